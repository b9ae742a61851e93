import GRDB

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
        return migrator
    }
}
