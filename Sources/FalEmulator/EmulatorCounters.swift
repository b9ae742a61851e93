/// What the emulator saw, so tests can assert "no job was submitted twice" and "polling stayed cheap".
public struct EmulatorCounters: Sendable, Codable, Equatable {
    /// Every submit call that reached the emulator, faulted or not.
    public var submitCalls = 0
    /// Requests that were created (accepted into the queue).
    public var requestsCreated = 0
    /// Created requests per distinct input (SHA-256 of the canonical JSON body).
    public var submissionsPerBody: [String: Int] = [:]
    /// Created requests whose input had been submitted before: the number that matters for "never pay twice".
    public var duplicateSubmissions = 0
    public var statusPolls = 0
    public var statusStreams = 0
    /// Status streams being answered right now: one a client closed, or that ended, no longer counts.
    public var statusStreamsOpen = 0
    /// Comments written on `stream-linger` streams after their COMPLETED: each one a client still reading.
    public var streamLingerComments = 0
    public var resultFetches = 0
    public var cancelCalls = 0
    /// Cancels that stopped a request that had not finished.
    public var cancelsApplied = 0
    public var uploadInitiations = 0
    public var uploadPuts = 0
    public var uploadBytes = 0
    public var listingCalls = 0
    /// GETs of result videos (a resumed download counts again).
    public var videoDownloads = 0
    /// Of those, how many carried a Range header.
    public var rangeRequests = 0
    public var videoBytesServed = 0
    public var uploadedFileFetches = 0
    /// Faults injected, by kind.
    public var faultsInjected: [String: Int] = [:]
    public var unauthorizedCalls = 0
    /// Submits refused with 429 because the key had `perKeyConcurrencyLimit` unfinished requests.
    public var concurrencyRejections = 0
    /// Requests that failed the model's input checks.
    public var validationFailures = 0
    public var requestsSucceeded = 0
    public var requestsFailed = 0
    public var requestsCancelled = 0
    /// The most requests unfinished (IN_QUEUE or IN_PROGRESS) at one moment.
    public var maxActiveRequests = 0
    /// The most requests IN_PROGRESS at one moment.
    public var maxRunningRequests = 0
    /// The most unfinished requests one key had at one moment.
    public var maxActivePerKey = 0
    /// The most HTTP calls being answered at one moment.
    public var maxConcurrentCalls = 0
    /// Submits by option header and value as received (`"X-Fal-Queue-Priority: low": 7`), so a test can see what a
    /// client asked of fal on every submit, not only the last.
    public var submitHeaders: [String: Int] = [:]
    /// Submit answers held right now (see `holdSubmitAnswers`): created requests whose client still waits.
    public var submitAnswersHeld = 0
    /// Webhook POSTs made, retries and duplicates included.
    public var webhookAttempts = 0
    /// Webhooks a receiver answered with 2xx.
    public var webhooksDelivered = 0
    /// What receivers answered webhook POSTs, by status code (`"401"`), or `"error"` when no answer came.
    public var webhookAnswers: [String: Int] = [:]

    public init() {}

    /// Injected faults of `kind`.
    public func faults(_ kind: FaultKind) -> Int { faultsInjected[kind.rawValue] ?? 0 }
}
