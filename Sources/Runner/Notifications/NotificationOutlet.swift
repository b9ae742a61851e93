import Foundation
import JobStore
import KlingCore
import Logging
import Synchronization

/// Takes events that are not part of a job's transaction (a pause, a stall) to the outbox. A store that cannot be
/// written (the very cause of some pauses) keeps them here until a later write works; only a crash in that window
/// loses one, and such a pause is told again by the next start that meets it.
public final class NotificationOutlet: Sendable {
    private let store: any JobQueue
    private let logger: Logger
    private let waiting = Mutex<[OutboxEvent]>([])
    /// Rung when an event was written, so the sender tells it at once.
    public let bell = Doorbell()

    init(store: any JobQueue, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    /// Queues `event` for the outbox; returns at once (the write happens on its own task).
    public func post(_ event: OutboxEvent) {
        waiting.withLock { $0.append(event) }
        Task { await flush() }
    }

    /// Writes what waits, oldest first; what the store refuses waits for the next call.
    public func flush() async {
        let events = waiting.withLock { events -> [OutboxEvent] in
            defer { events = [] }
            return events
        }
        var written = 0
        for (index, event) in events.enumerated() {
            do {
                try await store.enqueueNotification(event)
                written += 1
            } catch {
                logger.warning("cannot record the \(event.kind) notification now (\(error)); it is kept and written later")
                let rest = Array(events[index...])
                waiting.withLock { $0.insert(contentsOf: rest, at: 0) }
                break
            }
        }
        if written > 0 { bell.ring() }
    }

    /// The event a pause or its end is told as.
    static func event(for change: SubmissionGate.PauseChange, at now: Date = Date()) -> OutboxEvent {
        switch change {
        case .paused(let cause, let reason):
            let payload: JSONValue = ["cause": .string(cause.rawValue), "reason": .string(reason), "needs_operator": .bool(!cause.isLocal)]
            return OutboxEvent(kind: OutboxEvent.submissionPaused, payload: payload, at: now)
        case .resumed(let cause):
            return OutboxEvent(kind: OutboxEvent.submissionResumed, payload: ["cause": .string(cause.rawValue)], at: now)
        }
    }
}
