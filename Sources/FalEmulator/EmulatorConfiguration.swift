/// The emulator's knobs. Codable so tests in another process can read and change them at `/_emulator/config`.
public struct EmulatorConfiguration: Sendable, Codable, Equatable {
    /// Seconds a request spends IN_QUEUE at least, before a runner may take it.
    public var queueSeconds: Double = 0
    /// Seconds a request spends IN_PROGRESS.
    public var runSeconds: Double = 0.5
    /// How many requests run at once across all keys (nil: unlimited). Others wait IN_QUEUE with a real `queue_position`.
    public var runnerCapacity: Int? = nil
    /// How many unfinished requests one key may have; a submit past it answers 429 (nil: no limit).
    public var perKeyConcurrencyLimit: Int? = nil
    /// The `Retry-After` seconds sent with every 429.
    public var retryAfterSeconds: Double = 1
    /// How long a `slowAnswer` fault delays its answer.
    public var slowAnswerSeconds: Double = 2
    /// Size of each result video in bytes (nil: the natural size, about 9 kB). Videos are padded with an MP4 `free` box.
    public var videoBytes: Int? = nil
    /// Probability (0…1) that a request's video plays for the wrong length on purpose (2 s more than its `duration`,
    /// or 2 s less when that would pass 10 s), drawn once per created request at submit from the seeded sequence and
    /// counted as `faultsInjected["wrong-duration"]`. For testing that a client checks what it paid for.
    public var wrongDurationProbability: Double = 0
    /// Where the model's input checks answer: at submit (422 to the submit), or as the request's result (fal's queue).
    public var validateInputAt: ValidationPoint = .result
    /// Whether the request listing shows requests that have not ended (fal may list a request only once it ended).
    public var listingShowsUnfinished: Bool = false
    /// When true, new requests stay IN_QUEUE until released at `/_emulator/release`: for deterministic tests.
    public var holdRequests: Bool = false
    /// When true, a submit creates its request and then holds its answer until `/_emulator/release-answers`:
    /// the request exists (and would be billed) while the client still waits, so a test can fail the client's
    /// disk at exactly that moment.
    public var holdSubmitAnswers: Bool = false
    /// The base URL put in answers' `status_url`, `response_url` and `cancel_url` (nil: the emulator's own). A
    /// test points it elsewhere to check that a client never follows such URLs with its key.
    public var answerBaseURL: String? = nil
    /// Keys that are accepted (nil: any non-empty key). Others get 401.
    public var acceptedKeys: [String]? = nil
    /// Keys that are known but refused with 403.
    public var forbiddenKeys: [String] = []
    /// Seconds after completion that a result video stays downloadable (nil: forever); later it answers 404.
    public var resultLifetimeSeconds: Double? = nil
    /// When true, the file host ignores `Range` headers and always sends the whole file (as some CDNs do).
    public var ignoreRangeRequests: Bool = false
    /// Fraction of a video sent before a `truncatedDownload` fault cuts the connection.
    public var truncateFraction: Double = 0.5
    /// The longest a status stream waits between looks at its request. It also looks the moment its request can
    /// change by itself (its run ends, or it may start), as fal sends events when they happen; this bounds how late
    /// a change made by a call (a cancel, a release of held requests) is sent.
    public var streamIntervalSeconds: Double = 0.25
    /// How many times a webhook is tried when the receiver does not answer 2xx (fal: about 10 over 2 hours).
    public var webhookAttempts: Int = 10
    /// The wait before a webhook's first retry, doubling each time up to a minute (fal's is longer).
    public var webhookRetrySeconds: Double = 0.5
    /// Seed of the fault decisions: the same seed and the same sequence of calls give the same faults.
    public var seed: UInt64 = 1
    /// Fault rules, evaluated in order for every call; the first that fires wins.
    public var faults: [FaultRule] = []

    /// Where input checks are answered.
    public enum ValidationPoint: String, Sendable, Codable, CaseIterable {
        case submit, result
    }

    public init() {}
}
