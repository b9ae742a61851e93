import Foundation

/// Decides, for the whole runner, whether and how much may be submitted: fal's `Retry-After` as a floor for
/// every submission, a pause after a refused key, and a concurrency that shrinks on 429 and grows back slowly.
public actor SubmissionGate {
    /// The configured limit of requests at fal at once.
    public private(set) var configuredLimit: Int
    /// The limit in force now: lowered by 429s, raised by one per quiet `recoveryInterval`.
    public private(set) var limit: Int
    /// No submission before this (from the latest `Retry-After`).
    public private(set) var notBefore: Date?
    /// Why submission is paused (a refused key); nil when it is not.
    public private(set) var pausedReason: String?
    /// Submits in a row that could not reach fal at all.
    public private(set) var consecutiveUnreachable = 0
    private var lastChange = Date.distantPast
    private let recoveryInterval: TimeInterval
    private let doorbell: Doorbell

    public init(limit: Int, recoveryInterval: TimeInterval = 30, doorbell: Doorbell) {
        configuredLimit = max(1, limit)
        self.limit = max(1, limit)
        self.recoveryInterval = recoveryInterval
        self.doorbell = doorbell
    }

    /// A 429 on submit: nobody submits before `until`, and the limit drops below what is at fal now.
    ///
    /// Only the first 429 of a back-off window lowers the limit: the ones that follow answer submits sent before
    /// the runner backed off and say nothing new (a soak with random 429s collapsed the limit to 1 otherwise).
    public func rateLimited(until: Date, atFal: Int, now: Date = Date()) {
        let alreadyBackingOff = notBefore.map { now < $0 } ?? false
        notBefore = max(notBefore ?? until, until)
        guard !alreadyBackingOff else { return }
        let lowered = max(1, min(limit - 1, atFal - 1))
        if lowered < limit {
            limit = lowered
            lastChange = now
        }
    }

    /// A submit got through: the unreachable streak ends, and the limit creeps back up after a quiet while.
    public func submitted(now: Date = Date()) {
        consecutiveUnreachable = 0
        if limit < configuredLimit, now.timeIntervalSince(lastChange) >= recoveryInterval {
            limit += 1
            lastChange = now
            doorbell.ring()
        }
    }

    /// A submit never left: returns the length of the streak.
    @discardableResult
    public func unreachable() -> Int {
        consecutiveUnreachable += 1
        return consecutiveUnreachable
    }

    /// The key was refused: stop every submission until `resume`.
    public func pause(_ reason: String) {
        pausedReason = reason
    }

    public func resume() {
        pausedReason = nil
        doorbell.ring()
    }

    /// A new configured limit (SIGHUP); the limit in force follows it.
    public func setConfiguredLimit(_ value: Int) {
        configuredLimit = max(1, value)
        limit = configuredLimit
        doorbell.ring()
    }

    /// Whether a submission may go now; when it may not only because of `Retry-After`, when it may.
    public func check(now: Date = Date()) -> (allowed: Bool, after: Date?) {
        if pausedReason != nil { return (false, nil) }
        if let notBefore, notBefore > now { return (false, notBefore) }
        return (true, nil)
    }
}
