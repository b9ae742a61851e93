import Foundation

/// Decides, for the whole runner, whether and how much may be submitted: fal's `Retry-After` as a floor for
/// every submission, pauses (a refused key, our own disk or store failing), and a concurrency that shrinks on
/// 429 and grows back slowly.
public actor SubmissionGate {
    /// Why submission stops. Each cause is set and cleared by the part of the runner that sees it.
    public enum PauseCause: String, Sendable, CaseIterable, Comparable {
        /// fal refused the key: until an operator reloads (SIGHUP).
        case key
        /// The job store cannot be written: until a probe write works.
        case store
        /// The state folder has less free space than the configured floor: until it has more.
        case stateSpace = "state_space"
        /// Videos or manifests cannot be written: until a probe write to the output tree works.
        case output

        /// Causes of our own machine, which clear by themselves once the disk works again.
        public var isLocal: Bool { self != .key }

        public static func < (lhs: PauseCause, rhs: PauseCause) -> Bool {
            allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
        }
    }

    /// The configured limit of requests at fal at once.
    public private(set) var configuredLimit: Int
    /// The limit in force now: lowered by 429s, raised by one per quiet `recoveryInterval`.
    public private(set) var limit: Int
    /// No submission before this (from the latest `Retry-After`).
    public private(set) var notBefore: Date?
    /// Submits in a row that could not reach fal at all.
    public private(set) var consecutiveUnreachable = 0
    private var pauses: [PauseCause: String] = [:]
    private var lastChange = Date.distantPast
    private let recoveryInterval: TimeInterval
    private let doorbell: Doorbell
    /// Fired whenever a cause clears, so everything waiting on our own disk retries at once.
    private let cleared = Broadcast()

    public init(limit: Int, recoveryInterval: TimeInterval = 30, doorbell: Doorbell) {
        configuredLimit = max(1, limit)
        self.limit = max(1, limit)
        self.recoveryInterval = recoveryInterval
        self.doorbell = doorbell
    }

    /// Why submission is paused, every cause in one line; nil when it is not.
    public var pausedReason: String? {
        pauses.isEmpty ? nil : pauses.keys.sorted().map { pauses[$0]! }.joined(separator: "; ")
    }

    /// Why fal refused the key, when it did: the one pause that needs an operator.
    public var keyPausedReason: String? { pauses[.key] }

    /// The causes in force now.
    public var pauseCauses: Set<PauseCause> { Set(pauses.keys) }

    public func isPaused(_ cause: PauseCause) -> Bool { pauses[cause] != nil }

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
        pause(.key, reason)
    }

    /// Stops every submission for `cause`; true when it was not paused for it already (the caller logs once).
    @discardableResult
    public func pause(_ cause: PauseCause, _ reason: String) -> Bool {
        defer { pauses[cause] = reason }
        return pauses[cause] == nil
    }

    /// Lifts `cause`; true when it was in force. Everything waiting on it is woken.
    @discardableResult
    public func clear(_ cause: PauseCause) -> Bool {
        guard pauses.removeValue(forKey: cause) != nil else { return false }
        cleared.fire()
        doorbell.ring()
        return true
    }

    /// An operator reloaded: the key may be good now.
    public func resume() {
        clear(.key)
    }

    /// Waits until `cause` is lifted, or `limit` has passed (the caller then tries its own write again).
    public func waitUntilClear(_ cause: PauseCause, atMost limit: Duration) async {
        guard pauses[cause] != nil else { return }
        await cleared.wait(after: cleared.generation, atMost: limit)
    }

    /// A new configured limit (SIGHUP); the limit in force follows it.
    public func setConfiguredLimit(_ value: Int) {
        configuredLimit = max(1, value)
        limit = configuredLimit
        doorbell.ring()
    }

    /// Everything the dispatcher looks at when it wakes, in one hop: whether a submission may go, when fal's
    /// Retry-After ends, the limit, why it is paused, and the unreachable streak.
    public func snapshot(now: Date = Date()) -> Snapshot {
        let (allowed, after) = check(now: now)
        return Snapshot(allowed: allowed, opensAt: after, limit: limit, causes: Set(pauses.keys), keyPaused: pauses[.key],
                        unreachableStreak: consecutiveUnreachable)
    }

    /// The gate at one moment.
    public struct Snapshot: Sendable {
        public var allowed: Bool
        public var opensAt: Date?
        public var limit: Int
        public var causes: Set<PauseCause>
        public var keyPaused: String?
        public var unreachableStreak: Int
    }

    /// Whether a submission may go now; when it may not only because of `Retry-After`, when it may.
    public func check(now: Date = Date()) -> (allowed: Bool, after: Date?) {
        if !pauses.isEmpty { return (false, nil) }
        if let notBefore, notBefore > now { return (false, notBefore) }
        return (true, nil)
    }
}
