import Foundation
import KlingCore

/// Decides, for the whole runner, whether and how much may be submitted: fal's `Retry-After` as a floor for
/// every submission, pauses (a refused key, our own disk or store failing), and a concurrency that shrinks on
/// 429 and grows back, by time alone, to the configured limit within a minute of quiet.
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
    /// The limit right after the last 429 lowered it; `limit(at:)` grows from it.
    private var lowered: Int
    /// No submission before this (from the latest `Retry-After`).
    public private(set) var notBefore: Date?
    /// Submits in a row that could not reach fal at all.
    public private(set) var consecutiveUnreachable = 0
    private var pauses: [PauseCause: String] = [:]
    /// When the last 429 lowered the limit.
    private var loweredAt = Date.distantPast
    /// The first step of the recovery; see `limit(at:)`.
    private let recoveryInterval: TimeInterval
    private let doorbell: Doorbell
    /// Fired whenever a cause clears, so everything waiting on our own disk retries at once.
    private let cleared = Broadcast()
    /// Told when a cause starts or ends (`submission.paused`, `submission.resumed`).
    private let observer: (@Sendable (PauseChange) -> Void)?

    /// A pause that began or ended, for those who are told about it.
    public enum PauseChange: Sendable, Equatable {
        case paused(PauseCause, String)
        case resumed(PauseCause)
    }

    public init(limit: Int, recoveryInterval: TimeInterval = 5, doorbell: Doorbell, observer: (@Sendable (PauseChange) -> Void)? = nil) {
        configuredLimit = max(1, limit)
        lowered = max(1, limit)
        self.recoveryInterval = recoveryInterval
        self.doorbell = doorbell
        self.observer = observer
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
        // The limit grown so far, read before the new back-off moves the start of the quiet.
        let current = limit(at: now)
        notBefore = max(notBefore ?? until, until)
        guard !alreadyBackingOff else { return }
        let next = max(1, min(current - 1, atFal - 1))
        if next < current {
            lowered = next
            loweredAt = now
        }
    }

    /// The limit in force at `now`. After a 429 it grows back by time alone, from the end of fal's back-off: one
    /// more slot after `recoveryInterval` of quiet, then 2, 4, 8… more at each further interval (the gap doubles),
    /// so with the default 5 s a limit of 40 is back within 30 s, and one of 1,000 within 50 s, whatever limit was
    /// lost. A new 429 starts over from where it was. Submits need not happen for it to grow: a slow model (a
    /// video takes minutes) would otherwise keep the account under-used for a long time.
    public func limit(at now: Date) -> Int {
        guard lowered < configuredLimit else { return configuredLimit }
        let quiet = now.timeIntervalSince(quietSince)
        guard quiet >= recoveryInterval else { return lowered }
        let steps = min(30, Int(quiet / recoveryInterval))
        return min(configuredLimit, lowered + (1 << steps) - 1)
    }

    /// The limit in force now.
    public var limit: Int { limit(at: Date()) }

    /// When the recovery's quiet began: the last lowering, or the end of fal's back-off if that is later.
    private var quietSince: Date { max(loweredAt, notBefore ?? loweredAt) }

    /// When the limit next grows, while it is below the configured one: the dispatcher wakes then to use the slot.
    public func growsAt(_ now: Date) -> Date? {
        guard limit(at: now) < configuredLimit else { return nil }
        let start = quietSince
        let steps = max(0, Int(now.timeIntervalSince(start) / recoveryInterval))
        return start.addingTimeInterval(Double(steps + 1) * recoveryInterval)
    }

    /// A submit got through: the unreachable streak ends.
    public func submitted(now: Date = Date()) {
        consecutiveUnreachable = 0
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
        guard pauses[cause] == nil else { return false }
        observer?(.paused(cause, reason))
        return true
    }

    /// Lifts `cause`; true when it was in force. Everything waiting on it is woken.
    @discardableResult
    public func clear(_ cause: PauseCause) -> Bool {
        guard pauses.removeValue(forKey: cause) != nil else { return false }
        observer?(.resumed(cause))
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
    /// A recovery under way goes on from where it had got to (a reload, even one that only resumes after a key
    /// was refused, must not throw away what fal's 429s taught): the new limit caps it.
    public func setConfiguredLimit(_ value: Int, now: Date = Date()) {
        let current = limit(at: now)
        let recovering = current < configuredLimit
        configuredLimit = max(1, value)
        if recovering {
            lowered = min(current, configuredLimit)
            loweredAt = now
        } else {
            lowered = configuredLimit
        }
        doorbell.ring()
    }

    /// Everything the dispatcher looks at when it wakes, in one hop: whether a submission may go, when fal's
    /// Retry-After ends, the limit, why it is paused, and the unreachable streak.
    public func snapshot(now: Date = Date()) -> Snapshot {
        let (allowed, after) = check(now: now)
        return Snapshot(allowed: allowed, opensAt: after, limit: limit(at: now), growsAt: growsAt(now), causes: Set(pauses.keys),
                        keyPaused: pauses[.key], unreachableStreak: consecutiveUnreachable)
    }

    /// The gate at one moment.
    public struct Snapshot: Sendable {
        public var allowed: Bool
        public var opensAt: Date?
        public var limit: Int
        /// When `limit` next grows back after a 429; nil at the configured limit.
        public var growsAt: Date?
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
