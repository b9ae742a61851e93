import Foundation
import KlingCore

/// The outbox of notifications: events written with the change that caused them, delivered later by a sender.
public protocol NotificationOutbox: Sendable {
    /// Adds an event, unless one with the same id is there already. One transaction.
    func enqueueNotification(_ event: OutboxEvent) async throws
    /// Events not yet delivered to every target (or given up on), oldest first, with each target's deliveries.
    func pendingNotifications(limit: Int) async throws -> [PendingNotification]
    /// Records one delivery attempt of `eventID` to `target`. One transaction.
    func recordDelivery(eventID: String, target: String, outcome: DeliveryOutcome, at now: Date) async throws
    /// Marks an event told: every target has it, or has been given up on.
    func finishNotification(_ eventID: String, at now: Date) async throws
    /// Events some target still waits for (`status`, `/metrics`).
    func undeliveredNotifications() async throws -> Int
    /// Jobs at fal whose state has not changed since before `cutoff`, with when it last did.
    func stalledJobs(unchangedSince cutoff: Date) async throws -> [(job: JobRecord, since: Date)]
}

/// One event to tell: a stable id (receivers deduplicate on it), its kind, and its JSON body.
public struct OutboxEvent: Sendable, Equatable {
    public static let batchCompleted = "batch.completed"
    public static let jobFailed = "job.failed"
    public static let budgetHeld = "budget.held"
    public static let submissionPaused = "submission.paused"
    public static let submissionResumed = "submission.resumed"
    public static let stalled = "stalled"
    /// Every kind a target's `events:` may name.
    public static let kinds = [batchCompleted, jobFailed, budgetHeld, submissionPaused, submissionResumed, stalled]

    public var id: String
    public var kind: String
    public var payload: JSONValue
    public var createdAt: Date

    /// A new event; without `id`, a random one (an event that happens once per cause needs no other).
    public init(id: String? = nil, kind: String, payload: JSONValue, at createdAt: Date) {
        self.id = id ?? "evt_" + UUID().uuidString.lowercased()
        self.kind = kind
        self.payload = payload
        self.createdAt = createdAt
    }
}

/// An event not yet told everywhere, and where it has been tried.
public struct PendingNotification: Sendable {
    public var event: OutboxEvent
    /// By target key.
    public var deliveries: [String: NotificationDelivery]

    public init(event: OutboxEvent, deliveries: [String: NotificationDelivery]) {
        self.event = event
        self.deliveries = deliveries
    }
}

/// One target's attempts at one event.
public struct NotificationDelivery: Sendable, Equatable {
    public var target: String
    public var attempts: Int
    public var nextAt: Date?
    public var deliveredAt: Date?
    public var gaveUpAt: Date?
    public var lastError: String?

    /// Delivered, or given up on: nothing more to do for this target.
    public var isSettled: Bool { deliveredAt != nil || gaveUpAt != nil }
}

/// How one delivery attempt went.
public enum DeliveryOutcome: Sendable, Equatable {
    case delivered
    /// Try again at `retryAt`.
    case failed(String, retryAt: Date)
    /// Too old to keep trying (24 hours).
    case gaveUp(String)
}
