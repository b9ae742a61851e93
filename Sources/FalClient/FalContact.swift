import Foundation
import Synchronization

/// Whether fal has been answering: a run from cron gives up once it has not for `give_up_after`, instead of piling
/// up behind its own lock. Shared by every copy of a `FalClient`.
public final class FalContact: Sendable {
    private let missing = Mutex<Date?>(nil)
    /// Called when an outage starts, so a sleeping dispatcher can set its give-up time.
    private let onOutage = Mutex<(@Sendable () -> Void)?>(nil)

    public init() {}

    /// Since when no call has reached fal (a connection error, or fal's own 5xx); nil while calls get through.
    public var unreachableSince: Date? { missing.withLock { $0 } }

    /// Registers what to call when an outage starts (the runner rings its dispatcher).
    public func whenOutageStarts(_ handler: @escaping @Sendable () -> Void) {
        onOutage.withLock { $0 = handler }
    }

    /// A call got an answer from fal itself: the outage, if any, is over.
    func reached() {
        missing.withLock { $0 = nil }
    }

    /// A call did not reach fal; the outage starts with the first such call after the last answer.
    func missed(at now: Date = Date()) {
        let started = missing.withLock { since -> Bool in
            guard since == nil else { return false }
            since = now
            return true
        }
        if started, let handler = onOutage.withLock({ $0 }) { handler() }
    }
}
