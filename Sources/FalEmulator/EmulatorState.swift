import Crypto
import Foundation
import KlingCore

/// Everything the emulated fal knows: requests, uploads, counters and knobs.
///
/// Time is simulated lazily: a request's state is advanced from its timestamps whenever anyone looks, so an
/// idle emulator runs no timers, and the capacity queue is exact however rarely it is polled.
public actor EmulatorState {
    public private(set) var configuration: EmulatorConfiguration
    var rng: SplitMix64
    var requests: [String: EmulatedRequest] = [:]
    /// Ids in submission order, for the listing.
    var submissionOrder: [String] = []
    /// IN_QUEUE ids in FIFO order; `waitingHead` is the index of the first still waiting.
    var waiting: [String] = []
    var waitingHead = 0
    var running: [String] = []
    var simulatedUntil = Date.distantPast
    var tallies = EmulatorCounters()
    var activeByKey: [String: Int] = [:]
    var pendingUploads: [String: PendingUpload] = [:]
    var uploadedFiles: [String: StoredFile] = [:]
    var callsInFlight = 0
    /// How often each fault rule (by index) has fired, for rules with a limit.
    var ruleFirings: [Int: Int] = [:]
    /// The emulator's own base URL once listening; result and upload URLs are built from it.
    public internal(set) var baseURL = URL(string: "http://127.0.0.1")!
    /// fal's optional submit settings as the last submit sent them (`fal_webhook`, `X-Fal-Request-Timeout`,
    /// `X-Fal-Queue-Priority`, `X-Fal-Object-Lifecycle-Preference`), by those names, for tests to read back.
    public internal(set) var lastSubmitOptions: [String: String] = [:]
    /// Ids of requests whose webhook is not sent yet; the courier runs while there are any.
    var pendingWebhooks: Set<String> = []
    var courierRunning = false
    /// Set when the emulator stops: no webhook is sent after it.
    var shutDown = false
    /// Rung when something may end a request sooner than the courier expects (a release, a cancel, new knobs).
    nonisolated let webhookBell = Doorbell()
    /// The key webhooks are signed with, published at `/.well-known/jwks.json`; made fresh at each start.
    nonisolated let webhookKeyBytes = Curve25519.Signing.PrivateKey().rawRepresentation
    /// The user id webhooks are signed for.
    public nonisolated let webhookUserID = "emulator-user"
    /// Submit answers waiting for `releaseSubmitAnswers`.
    var heldAnswers: [CheckedContinuation<Void, Never>] = []

    struct PendingUpload: Sendable {
        let fileName: String
        let contentType: String
    }

    struct StoredFile: Sendable {
        let fileName: String
        let contentType: String
        let bytes: Data
    }

    public init(configuration: EmulatorConfiguration = .init()) {
        self.configuration = configuration
        self.rng = SplitMix64(seed: configuration.seed)
    }

    // MARK: Knobs and counters

    public func counters() -> EmulatorCounters { tallies }

    /// Replaces the knobs; a new seed restarts the fault sequence.
    public func setConfiguration(_ configuration: EmulatorConfiguration) {
        if configuration.seed != self.configuration.seed { rng = SplitMix64(seed: configuration.seed) }
        if configuration.faults != self.configuration.faults { ruleFirings = [:] }
        self.configuration = configuration
        webhookBell.ring()
    }

    /// Changes some knobs in place.
    public func configure(_ change: @Sendable (inout EmulatorConfiguration) -> Void) {
        var copy = configuration
        change(&copy)
        setConfiguration(copy)
    }

    func setBaseURL(_ url: URL) { baseURL = url }

    /// Lets held requests (see `holdRequests`) proceed; returns how many were released.
    @discardableResult
    public func releaseHeldRequests() -> Int {
        var released = 0
        for id in waiting[waitingHead...] where requests[id]?.held == true {
            requests[id]?.held = false
            released += 1
        }
        webhookBell.ring()
        return released
    }

    /// Where answers say a request's status, result and cancel live.
    var answerBase: URL { configuration.answerBaseURL.flatMap(URL.init(string:)) ?? baseURL }

    /// Holds a created request's submit answer until released, when `holdSubmitAnswers` asks for it.
    func holdSubmitAnswerIfAsked() async {
        guard configuration.holdSubmitAnswers else { return }
        tallies.submitAnswersHeld += 1
        await withCheckedContinuation { heldAnswers.append($0) }
    }

    /// Sends every held submit answer; returns how many.
    @discardableResult
    public func releaseSubmitAnswers() -> Int {
        let waiting = heldAnswers
        heldAnswers = []
        tallies.submitAnswersHeld = 0
        waiting.forEach { $0.resume() }
        return waiting.count
    }

    /// A summary of every request, for tests and the admin endpoint.
    public func requestSummaries(now: Date = Date()) -> [RequestSummary] {
        advance(to: now)
        return submissionOrder.compactMap { requests[$0] }.map { request in
            RequestSummary(
                requestID: request.id, endpoint: request.endpoint, status: request.phase.rawValue,
                outcome: Self.describe(request.outcome), submittedAt: request.submittedAt, startedAt: request.startedAt,
                endedAt: request.endedAt, statusPolls: request.statusPolls, bodySHA256: request.bodyHash)
        }
    }

    func callStarted() {
        callsInFlight += 1
        tallies.maxConcurrentCalls = max(tallies.maxConcurrentCalls, callsInFlight)
    }

    func callEnded() { callsInFlight -= 1 }

    func count(fault: FaultKind) { tallies.faultsInjected[fault.rawValue, default: 0] += 1 }

    /// Draws the fault (if any) for one call; the first rule that applies, has firings left, and fires wins.
    func drawFault(for route: EmulatorRouteKind) -> FaultKind? {
        for (index, rule) in configuration.faults.enumerated() where rule.applies(to: route) {
            if let limit = rule.limit, ruleFirings[index, default: 0] >= limit { continue }
            if rng.unit() < rule.probability {
                ruleFirings[index, default: 0] += 1
                count(fault: rule.kind)
                return rule.kind
            }
        }
        return nil
    }

    /// 401/403 decisions; nil when the key may call.
    func authorize(_ header: String?) -> (status: Int, detail: String)? {
        guard let header, header.hasPrefix("Key "), header.count > 4 else {
            tallies.unauthorizedCalls += 1
            return (401, "Missing or malformed Authorization header; expected 'Key <FAL_KEY>'")
        }
        let key = String(header.dropFirst(4))
        if configuration.forbiddenKeys.contains(key) {
            tallies.unauthorizedCalls += 1
            return (403, "This key is not allowed to call this endpoint")
        }
        if let accepted = configuration.acceptedKeys, !accepted.contains(key) {
            tallies.unauthorizedCalls += 1
            return (401, "Invalid API key")
        }
        return nil
    }

    static func sha256(_ data: Data) -> String {
        SHA256.hash(data: data).hexString
    }

    static func describe(_ outcome: EmulatedRequest.Outcome) -> String {
        switch outcome {
        case .success: return "success"
        case .invalid: return "invalid-input"
        case .runnerFailure(_, let type, _): return type
        case .rejected: return "content-policy"
        case .cancelled: return "cancelled"
        }
    }
}

/// One request as the admin endpoint lists it.
public struct RequestSummary: Sendable, Codable, Equatable {
    public var requestID: String
    public var endpoint: String
    public var status: String
    public var outcome: String
    public var submittedAt: Date
    public var startedAt: Date?
    public var endedAt: Date?
    public var statusPolls: Int
    public var bodySHA256: String
}
