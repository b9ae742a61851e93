internal import GRDB
import KlingCore

extension JobStore {
    /// The schema, one versioned migration at a time; never edit a shipped migration, add a new one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "batch") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull().unique()
                t.column("source_path", .text).notNull()
                t.column("source_sha256", .text).notNull().indexed()
                t.column("accepted_at", .datetime).notNull()
                t.column("output_dir", .text).notNull().unique()
            }
            try db.create(table: "job") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("batch_id", .integer).notNull().references("batch", onDelete: .cascade).indexed()
                t.column("name", .text).notNull()
                t.column("state", .text).notNull()
                t.column("spec_json", .text).notNull()
                t.column("endpoint", .text).notNull()
                t.column("duration_seconds", .integer).notNull()
                t.column("estimated_cost_micros", .integer).notNull()
                t.column("attempts", .integer).notNull().defaults(to: 0)
                t.column("deferrals", .integer).notNull().defaults(to: 0)
                t.column("next_attempt_at", .datetime)
                t.column("last_error", .text)
                t.column("request_id", .text).indexed()
                t.column("status_url", .text)
                t.column("response_url", .text)
                t.column("cancel_url", .text)
                t.column("submitted_input", .text)
                t.column("submit_started_at", .datetime)
                t.column("possible_duplicate", .boolean).notNull().defaults(to: false)
                t.column("status_polls", .integer).notNull().defaults(to: 0)
                t.column("log_lines", .integer).notNull().defaults(to: 0)
                t.column("result_json", .text)
                t.column("fal_metrics", .text)
                t.column("video_url", .text)
                t.column("video_expected_bytes", .integer)
                t.column("video_path", .text)
                t.column("video_bytes", .integer)
                t.column("video_sha256", .text)
                t.column("manifest_path", .text)
                t.column("held_reason", .text)
                t.column("cancel_requested", .boolean).notNull().defaults(to: false)
                t.column("created_at", .datetime).notNull()
                t.column("submitted_at", .datetime)
                t.column("started_at", .datetime)
                t.column("fal_completed_at", .datetime)
                t.column("finished_at", .datetime)
                t.column("updated_at", .datetime).notNull()
                t.uniqueKey(["batch_id", "name"])
            }
            try db.create(index: "job_on_state_next_attempt", on: "job", columns: ["state", "next_attempt_at"])
            try db.create(table: "attempt") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("job_id", .integer).notNull().references("job", onDelete: .cascade).indexed()
                t.column("number", .integer).notNull()
                t.column("started_at", .datetime).notNull()
                t.column("ended_at", .datetime)
                t.column("request_id", .text).indexed()
                t.column("outcome", .text).notNull()
                t.column("counted", .boolean).notNull()
                t.column("error_reason", .text)
                t.column("error_message", .text)
                t.column("http_status", .integer)
            }
            try db.create(table: "event") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("job_id", .integer).notNull().references("job", onDelete: .cascade).indexed()
                t.column("at", .datetime).notNull()
                t.column("kind", .text).notNull()
                t.column("from_state", .text)
                t.column("to_state", .text)
                t.column("message", .text).notNull()
            }
            try db.create(table: "upload") { t in
                t.primaryKey("sha256", .text)
                t.column("file_url", .text).notNull()
                t.column("byte_count", .integer).notNull()
                t.column("content_type", .text).notNull()
                t.column("uploaded_at", .datetime).notNull()
            }
        }
        // The budget: a job's cost is reserved, for the UTC day it was claimed on, in the claim's transaction.
        migrator.registerMigration("v2-budget") { db in
            try db.alter(table: "job") { t in
                t.add(column: "reserved_micros", .integer).notNull().defaults(to: 0)
                t.add(column: "reserved_day", .text)
            }
            try db.create(index: "job_on_reserved_day", on: "job", columns: ["reserved_day"])
        }
        migrator.registerMigration("v3-identity-ledger-origins") { db in try migrateToLedger(db) }
        // v4: which events operators caused (the daemon logs them), and each job's latest attempt number.
        migrator.registerMigration("v4-operator-events-attempt-numbers") { db in
            try db.alter(table: "event") { t in t.add(column: "by_operator", .boolean).notNull().defaults(to: false) }
            try db.alter(table: "job") { t in t.add(column: "last_attempt", .integer).notNull().defaults(to: 0) }
            try db.execute(sql: "UPDATE job SET last_attempt = COALESCE((SELECT MAX(number) FROM attempt WHERE attempt.job_id = job.id), 0)")
            try db.execute(sql: "UPDATE event SET by_operator = 1 WHERE message LIKE '%by an operator%'")
        }
        migrator.registerMigration("v5-accounting") { db in try migrateToAccounting(db) }
        // v6: a job's priority (0 low, 1 normal, 2 high), which orders the claim.
        migrator.registerMigration("v6-priority") { db in
            try db.alter(table: "job") { t in t.add(column: "priority", .integer).notNull().defaults(to: JobPriority.normal.rawValue) }
            try db.create(index: "job_on_state_priority", on: "job", columns: ["state", "priority"])
        }
        migrator.registerMigration("v7-outbox") { db in try migrateToOutbox(db) }
        // v8: which runner sent each attempt (host name and a per-process suffix); unknown for earlier attempts.
        migrator.registerMigration("v8-attempted-by") { db in
            try db.alter(table: "attempt") { t in t.add(column: "attempted_by", .text) }
        }
        return migrator
    }

    /// v3: the store's identity, the origin every request was sent to, how a failed job can be retried, and the
    /// spend ledger that `purge` never deletes. Every earlier attempt that may have reached fal becomes a ledger
    /// row; reservations stay open only on jobs that are still to be submitted.
    private static func migrateToLedger(_ db: Database) throws {
        try db.create(table: "meta") { t in
            t.primaryKey("key", .text)
            t.column("value", .text).notNull()
        }
        try db.alter(table: "job") { t in
            // The scheme://host:port that the job's request went to; a run configured for another never touches it.
            t.add(column: "fal_origin", .text)
            // For a failed job: what `retry` must do (download, result, submit, paid_resubmit).
            t.add(column: "retry_by", .text)
            // For a queued job that `retry` put back: what the claim resumes (download, result) instead of a submit.
            t.add(column: "resume", .text)
        }
        try db.alter(table: "upload") { t in t.add(column: "origin", .text).notNull().defaults(to: "") }
        try db.create(table: "spend") { t in
            t.autoIncrementedPrimaryKey("id")
            // No foreign keys: a purged job's spend stays.
            t.column("job_id", .integer).indexed()
            t.column("batch_id", .integer).notNull().indexed()
            t.column("batch_name", .text).notNull()
            t.column("job_name", .text).notNull()
            t.column("attempt", .integer).notNull()
            t.column("request_id", .text)
            t.column("endpoint", .text).notNull()
            t.column("origin", .text)
            t.column("micros", .integer).notNull()
            t.column("day", .text).notNull().indexed()
            t.column("at", .datetime).notNull()
            // accepted (fal returned a request id) or unknown (the body left, the answer did not come back).
            t.column("kind", .text).notNull()
        }
        for row in try Row.fetchAll(db, sql: "SELECT id, status_url FROM job WHERE status_url IS NOT NULL") {
            guard let origin = FalOrigin.of(row["status_url"] as String) else { continue }
            try db.execute(sql: "UPDATE job SET fal_origin = ? WHERE id = ?", arguments: [origin, row["id"] as Int64])
        }
        // One ledger row per attempt that may have reached fal, on the day it was sent. Requests to a loopback
        // origin went to an emulator (older versions ran --simulate in the same store): no money was spent there.
        try db.execute(sql: """
            INSERT INTO spend (job_id, batch_id, batch_name, job_name, attempt, request_id, endpoint, origin, micros, day, at, kind)
            SELECT job.id, job.batch_id, batch.name, job.name, attempt.number, attempt.request_id, job.endpoint, job.fal_origin,
                   job.estimated_cost_micros, substr(attempt.started_at, 1, 10), attempt.started_at,
                   CASE WHEN attempt.outcome IN ('unknown', 'lost') THEN 'unknown' ELSE 'accepted' END
            FROM attempt JOIN job ON job.id = attempt.job_id JOIN batch ON batch.id = job.batch_id
            WHERE attempt.outcome IN ('accepted', 'unknown', 'adopted', 'lost', 'failed_at_fal', 'succeeded', 'cancelled')
              AND NOT (COALESCE(job.fal_origin, '') LIKE 'http://127.0.0.1%' OR COALESCE(job.fal_origin, '') LIKE 'http://localhost%'
                       OR COALESCE(job.fal_origin, '') LIKE 'http://[::1]%')
            ORDER BY attempt.started_at, attempt.id
            """)
        try db.execute(sql: "UPDATE job SET reserved_micros = 0, reserved_day = NULL WHERE state NOT IN ('queued', 'held', 'uploading', 'submitting')")
    }
}
