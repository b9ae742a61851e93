import Foundation
import GRDB

extension JobStore {
    public func job(_ id: Int64) throws -> JobRecord? {
        try writer.read { try JobRecord.fetchOne($0.cachedStatement(sql: "SELECT * FROM job WHERE id = ?"), arguments: [id]) }
    }

    public func batch(_ id: Int64) throws -> BatchRecord? {
        try writer.read { try BatchRecord.fetchOne($0, key: id) }
    }

    public func jobs(in states: [JobState]) throws -> [JobRecord] {
        try writer.read { db in
            try JobRecord.fetchAll(db, sql: "SELECT * FROM job WHERE state IN (\(states.map { _ in "?" }.joined(separator: ","))) ORDER BY id",
                                   arguments: StatementArguments(states.map(\.rawValue)))
        }
    }

    public func allJobs() throws -> [JobRecord] {
        try writer.read { try JobRecord.fetchAll($0, sql: "SELECT * FROM job ORDER BY id") }
    }

    public func jobs(inBatch batchID: Int64) throws -> [JobRecord] {
        try writer.read { try JobRecord.fetchAll($0, sql: "SELECT * FROM job WHERE batch_id = ? ORDER BY id", arguments: [batchID]) }
    }

    /// How many jobs are in each state.
    public func counts() throws -> [JobState: Int] {
        try writer.read { db in
            var counts: [JobState: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM job GROUP BY state") {
                if let state = JobState(rawValue: row["state"]) { counts[state] = row["n"] }
            }
            return counts
        }
    }

    /// Jobs that are not final: what a `run --once` still has to finish.
    public func unfinishedCount() throws -> Int {
        try writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM job WHERE state NOT IN ('completed', 'failed', 'cancelled', 'held')") ?? 0 }
    }

    /// The earliest time a queued job becomes due, when none is due now.
    public func nextDueTime() throws -> Date? {
        try writer.read { try Date.fetchOne($0, sql: "SELECT MIN(next_attempt_at) FROM job WHERE state = 'queued'") }
    }

    /// Count and estimated cost by state of the jobs in `ids`, read from three narrow columns: the progress line
    /// asks twice a second and must not decode every job's spec to draw it.
    public func tally(of ids: Set<Int64>) throws -> [JobState: (count: Int, costMicros: Int64)] {
        try writer.read { db in
            var tally: [JobState: (count: Int, costMicros: Int64)] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT id, state, estimated_cost_micros FROM job")
            while let row = try rows.next() {
                guard ids.contains(row["id"]), let state = JobState(rawValue: row["state"]) else { continue }
                let cost: Int64 = row["estimated_cost_micros"]
                tally[state, default: (0, 0)].count += 1
                tally[state, default: (0, 0)].costMicros += cost
            }
            return tally
        }
    }

    /// Whether any job waits for budget (an index lookup, cheap enough for every dispatcher pass).
    public func hasHeldJob() throws -> Bool {
        try writer.read { try Bool.fetchOne($0, sql: "SELECT EXISTS (SELECT 1 FROM job WHERE state = 'held')") ?? false }
    }

    /// Whether a queued job is due at `now`.
    public func hasDueJob(now: Date = Date()) throws -> Bool {
        try writer.read {
            try Bool.fetchOne($0, sql: "SELECT EXISTS (SELECT 1 FROM job WHERE state = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= ?))", arguments: [now]) ?? false
        }
    }

    public func events(of jobID: Int64) throws -> [JobEvent] {
        try writer.read { try JobEvent.fetchAll($0, sql: "SELECT * FROM event WHERE job_id = ? ORDER BY id", arguments: [jobID]) }
    }

    public func attempts(of jobID: Int64) throws -> [AttemptRecord] {
        try writer.read { try AttemptRecord.fetchAll($0, sql: "SELECT * FROM attempt WHERE job_id = ? ORDER BY number", arguments: [jobID]) }
    }

    /// Whether a job or an attempt already holds this fal request id: reconciliation must never adopt one twice.
    /// (Asked per candidate, by index: reading every known id per look cost a set of 20,000 strings each time.)
    public func isKnownRequestID(_ requestID: String) throws -> Bool {
        try writer.read { db in
            try Bool.fetchOne(
                db, sql: "SELECT EXISTS (SELECT 1 FROM job WHERE request_id = ?) OR EXISTS (SELECT 1 FROM attempt WHERE request_id = ?)",
                arguments: [requestID, requestID]) ?? false
        }
    }

    public func batches() throws -> [BatchRecord] {
        try writer.read { try BatchRecord.fetchAll($0, sql: "SELECT * FROM batch ORDER BY id") }
    }
}

extension JobStore {
    /// The fal URL of an image already uploaded at or after `notBefore`, by its SHA-256.
    public func cachedUpload(sha256: String, notBefore: Date) throws -> String? {
        try writer.read { try String.fetchOne($0, sql: "SELECT file_url FROM upload WHERE sha256 = ? AND uploaded_at >= ?", arguments: [sha256, notBefore]) }
    }

    public func recordUpload(sha256: String, fileURL: String, byteCount: Int, contentType: String, at now: Date = Date()) throws {
        try writer.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO upload (sha256, file_url, byte_count, content_type, uploaded_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [sha256, fileURL, byteCount, contentType, now])
        }
    }

    public func uploads() throws -> [UploadRecord] {
        try writer.read { try UploadRecord.fetchAll($0, sql: "SELECT * FROM upload ORDER BY uploaded_at") }
    }
}

extension JobStore {
    /// Every request id any attempt ever had, with its job: old ids in logs still find their job.
    public func attemptRequestIDs() throws -> [String: Int64] {
        try writer.read { db in
            var map: [String: Int64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT request_id, job_id FROM attempt WHERE request_id IS NOT NULL") {
                map[row["request_id"]] = row["job_id"]
            }
            return map
        }
    }

    /// The oldest queued job's acceptance time, for "oldest queued" in `status`.
    public func oldestQueued() throws -> Date? {
        try writer.read { try Date.fetchOne($0, sql: "SELECT MIN(created_at) FROM job WHERE state IN ('queued', 'held')") }
    }
}

extension JobStore {
    /// The newest event's id: every change to a job writes an event, so this moving is a cheap (index-only)
    /// sign that counts may have changed, and an idle daemon need not recount 10,000 jobs to learn nothing did.
    public func lastEventID() throws -> Int64 {
        try writer.read { try Int64.fetchOne($0, sql: "SELECT MAX(id) FROM event") ?? 0 }
    }
}
