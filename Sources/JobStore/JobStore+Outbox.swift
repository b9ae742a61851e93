import Foundation
internal import GRDB
import KlingCore

/// The notification outbox: an event is written in the transaction of the change that caused it, so a crash
/// between the change and its delivery loses nothing; a sender delivers it later, at least once, by its id.
extension JobStore {
    /// v7: events waiting to be told, and each target's delivery of each one.
    static func migrateToOutbox(_ db: Database) throws {
        try db.create(table: "outbox") { t in
            t.primaryKey("id", .text)
            t.column("kind", .text).notNull()
            t.column("payload", .text).notNull()
            t.column("created_at", .datetime).notNull()
            t.column("done_at", .datetime)
        }
        try db.create(index: "outbox_pending", on: "outbox", columns: ["created_at"], condition: Column("done_at") == nil)
        try db.create(table: "outbox_delivery") { t in
            t.column("event_id", .text).notNull().references("outbox", onDelete: .cascade)
            t.column("target", .text).notNull()
            t.column("attempts", .integer).notNull().defaults(to: 0)
            t.column("next_at", .datetime)
            t.column("delivered_at", .datetime)
            t.column("gave_up_at", .datetime)
            t.column("last_error", .text)
            t.primaryKey(["event_id", "target"])
        }
        // The on_complete hook: the batch's choice, and each completed job's run of it.
        try db.alter(table: "batch") { t in t.add(column: "on_complete", .text) }
        try db.alter(table: "job") { t in
            t.add(column: "hook_command", .text)
            t.add(column: "hook_state", .text)
            t.add(column: "hook_attempts", .integer).notNull().defaults(to: 0)
            t.add(column: "hook_next_at", .datetime)
            t.add(column: "hook_result", .text)
        }
        try db.create(index: "job_hook_pending", on: "job", columns: ["hook_next_at"], condition: Column("hook_state") == "pending")
    }

    /// Adds an event unless one with its id is there already (a first budget hold per batch and day, say).
    static func insertOutbox(_ db: Database, _ event: OutboxEvent) throws {
        try db.cachedStatement(sql: "INSERT OR IGNORE INTO outbox (id, kind, payload, created_at) VALUES (?, ?, ?, ?)")
            .execute(arguments: [event.id, event.kind, event.payload.canonicalString(), event.createdAt])
    }

    /// What a job's arrival in a final state tells: `job.failed` for a failure, and `batch.completed` when it was the
    /// batch's last unfinished job. Part of `transition`, so of the same transaction.
    static func noteFinal(_ db: Database, _ job: JobRecord, at now: Date) throws {
        if job.state == .failed {
            try insertOutbox(db, OutboxEvent(kind: OutboxEvent.jobFailed, payload: try jobFailedPayload(db, job), at: now))
        }
        let unfinished = try Int.fetchOne(
            db, sql: "SELECT COUNT(*) FROM job WHERE batch_id = ? AND state NOT IN ('completed', 'failed', 'cancelled')", arguments: [job.batchId]) ?? 0
        if unfinished == 0 {
            try insertOutbox(db, OutboxEvent(kind: OutboxEvent.batchCompleted, payload: try batchCompletedPayload(db, batchID: job.batchId), at: now))
        }
    }

    private static func jobFailedPayload(_ db: Database, _ job: JobRecord) throws -> JSONValue {
        let batch = try String.fetchOne(db, sql: "SELECT name FROM batch WHERE id = ?", arguments: [job.batchId]) ?? "?"
        let route = job.retryRoute ?? .submit
        let retry: String = switch route {
        case .download: "kling-batch retry \(batch)/\(job.name) downloads the finished video again (free)"
        case .result: "kling-batch retry \(batch)/\(job.name) fetches the finished result from fal again (free)"
        case .submit, .paidResubmit: "kling-batch retry \(batch)/\(job.name) submits it again (paid)"
        }
        return [
            "batch": .string(batch), "job": .string(job.name), "reason": .string(job.lastError ?? "unknown"),
            "retry": .string(route.rawValue), "retry_hint": .string(retry), "request_id": job.requestId.map(JSONValue.string) ?? .null,
            "cost_micros": .int(job.estimatedCostMicros),
        ]
    }

    private static func batchCompletedPayload(_ db: Database, batchID: Int64) throws -> JSONValue {
        let batch = try Row.fetchOne(db, sql: "SELECT name, output_dir FROM batch WHERE id = ?", arguments: [batchID])
        var counts: [String: JSONValue] = ["completed": 0, "failed": 0, "cancelled": 0]
        var seconds: Int64 = 0
        var total: Int64 = 0
        for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n, SUM(CASE WHEN state = 'completed' THEN duration_seconds ELSE 0 END) AS s FROM job WHERE batch_id = ? GROUP BY state", arguments: [batchID]) {
            counts[row["state"] as String] = .int(row["n"])
            seconds += row["s"] as Int64? ?? 0
            total += row["n"] as Int64
        }
        let micros = try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(micros), 0) FROM spend WHERE batch_id = ?", arguments: [batchID]) ?? 0
        let failed = try String.fetchAll(db, sql: "SELECT name FROM job WHERE batch_id = ? AND state = 'failed' ORDER BY id LIMIT 100", arguments: [batchID])
        let folder: String = batch?["output_dir"] ?? ""
        let root = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'output_root'")
        let output = folder.hasPrefix("/") ? folder : root.map { ($0 as NSString).appendingPathComponent(folder) } ?? folder
        return [
            "batch": .string(batch?["name"] ?? "?"), "jobs": .int(total), "counts": .object(counts), "seconds_of_video": .int(seconds),
            "cost_micros": .int(micros), "cost_usd": .string(USD(micros: micros).exactDescription), "output": .string(output),
            "failed_jobs": .array(failed.map(JSONValue.string)),
        ]
    }
}

extension JobStore: NotificationOutbox {
    public func enqueueNotification(_ event: OutboxEvent) throws {
        try write { db in try Self.insertOutbox(db, event) }
    }

    public func pendingNotifications(limit: Int) throws -> [PendingNotification] {
        try read { db in
            let events = try Row.fetchAll(db, sql: "SELECT * FROM outbox WHERE done_at IS NULL ORDER BY created_at, id LIMIT ?", arguments: [limit])
            return try events.map { row in
                let id: String = row["id"]
                let deliveries = try Row.fetchAll(db, sql: "SELECT * FROM outbox_delivery WHERE event_id = ?", arguments: [id]).map { delivery in
                    NotificationDelivery(
                        target: delivery["target"], attempts: delivery["attempts"], nextAt: delivery["next_at"], deliveredAt: delivery["delivered_at"],
                        gaveUpAt: delivery["gave_up_at"], lastError: delivery["last_error"])
                }
                let payload = (try? JSONValue.parse(Data((row["payload"] as String).utf8))) ?? .null
                return PendingNotification(
                    event: OutboxEvent(id: id, kind: row["kind"], payload: payload, at: row["created_at"]),
                    deliveries: Dictionary(deliveries.map { ($0.target, $0) }) { first, _ in first })
            }
        }
    }

    public func recordDelivery(eventID: String, target: String, outcome: DeliveryOutcome, at now: Date) throws {
        try write { db in
            let (delivered, gaveUp, nextAt, error): (Date?, Date?, Date?, String?) = switch outcome {
            case .delivered: (now, nil, nil, nil)
            case .failed(let message, let retryAt): (nil, nil, retryAt, message)
            case .gaveUp(let message): (nil, now, nil, message)
            }
            try db.execute(
                sql: """
                    INSERT INTO outbox_delivery (event_id, target, attempts, next_at, delivered_at, gave_up_at, last_error) VALUES (?, ?, 1, ?, ?, ?, ?)
                    ON CONFLICT (event_id, target) DO UPDATE SET attempts = attempts + 1, next_at = excluded.next_at,
                      delivered_at = excluded.delivered_at, gave_up_at = excluded.gave_up_at, last_error = COALESCE(excluded.last_error, last_error)
                    """,
                arguments: [eventID, target, nextAt, delivered, gaveUp, error])
        }
    }

    public func finishNotification(_ eventID: String, at now: Date) throws {
        try write { db in try db.execute(sql: "UPDATE outbox SET done_at = ? WHERE id = ? AND done_at IS NULL", arguments: [now, eventID]) }
    }

    public func undeliveredNotifications() throws -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outbox WHERE done_at IS NULL") ?? 0 }
    }

    public func stalledJobs(unchangedSince cutoff: Date) throws -> [(job: JobRecord, since: Date)] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT job.*, (SELECT MAX(at) FROM event WHERE event.job_id = job.id AND event.kind = 'state') AS moved_at FROM job
                WHERE state IN ('submit_unknown', 'in_queue', 'in_progress')
                """).compactMap { row -> (job: JobRecord, since: Date)? in
                guard let moved = row["moved_at"] as Date?, moved < cutoff else { return nil }
                return (try JobRecord(row: row), moved)
            }
        }
    }
}
