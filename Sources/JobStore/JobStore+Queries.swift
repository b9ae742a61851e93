internal import GRDB
import Foundation

/// Reads, each in one read transaction (a consistent snapshot).
extension JobStore {
    public func job(_ id: Int64) throws -> JobRecord? {
        try read { try Self.fetchJob($0, id) }
    }

    public func job(requestID: String) throws -> JobRecord? {
        try read { try Self.fetchJobs($0, "SELECT * FROM job WHERE request_id = ?", [requestID]).first }
    }

    public func batch(_ id: Int64) throws -> BatchRecord? {
        try read { try Row.fetchOne($0.cachedStatement(sql: "SELECT * FROM batch WHERE id = ?"), arguments: [id]).map(BatchRecord.init(row:)) }
    }

    public func batches() throws -> [BatchRecord] {
        try read { try Row.fetchAll($0, sql: "SELECT * FROM batch ORDER BY id").map(BatchRecord.init(row:)) }
    }

    public func jobs(in states: [JobState]) throws -> [JobRecord] {
        try read { db in
            try Self.fetchJobs(db, "SELECT * FROM job WHERE state IN (\(states.map { _ in "?" }.joined(separator: ","))) ORDER BY id",
                               StatementArguments(states.map(\.rawValue)))
        }
    }

    public func resumableJobs() throws -> [JobRecord] { try jobs(in: JobState.resumable) }

    public func allJobs() throws -> [JobRecord] {
        try read { try Self.fetchJobs($0, "SELECT * FROM job ORDER BY id") }
    }

    public func jobs(inBatch batchID: Int64) throws -> [JobRecord] {
        try read { try Self.fetchJobs($0, "SELECT * FROM job WHERE batch_id = ? ORDER BY id", [batchID]) }
    }

    /// How many jobs are in each state.
    public func counts() throws -> [JobState: Int] {
        try read { db in
            var counts: [JobState: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM job GROUP BY state") {
                if let state = JobState(rawValue: row["state"]) { counts[state] = row["n"] }
            }
            return counts
        }
    }

    /// Jobs that are not final: what a `run --once` still has to finish. With `origin`, jobs whose request went to
    /// another origin are left out: this run will not touch them (that count reads rows; without, the state index).
    public func unfinishedCount(origin: String? = nil) throws -> Int {
        try read {
            try Int.fetchOne(
                $0.cachedStatement(sql: """
                    SELECT COUNT(*) FROM job WHERE state NOT IN ('completed', 'failed', 'cancelled', 'held')
                      AND (? IS NULL OR \(Self.notForeign))
                    """), arguments: [origin, origin]) ?? 0
        }
    }

    /// SQL true for a job a runner configured for the origin bound to `?` may touch: one whose request (if any) is
    /// there, or one that needs no key (a download). The one definition of "foreign" for every query.
    static let notForeign = """
        (fal_origin IS NULL OR fal_origin = ? OR state = 'downloading' OR (state = 'queued' AND COALESCE(resume, '') != 'result'))
        """

    /// Unfinished jobs whose request went to another origin than `origin`, by that origin: a run configured for
    /// `origin` leaves them alone (their URLs, and the key, belong to the other one).
    public func foreignJobs(origin: String) throws -> [String: [Int64]] {
        try read { db in
            var found: [String: [Int64]] = [:]
            let rows = try Row.fetchAll(
                db, sql: """
                    SELECT id, fal_origin FROM job WHERE state NOT IN ('completed', 'failed', 'cancelled', 'held') AND NOT \(Self.notForeign)
                    ORDER BY id
                    """, arguments: [origin])
            for row in rows { found[row["fal_origin"], default: []].append(row["id"]) }
            return found
        }
    }

    /// The earliest time a queued job becomes due, when none is due now.
    public func nextDueTime() throws -> Date? {
        try read { try Date.fetchOne($0.cachedStatement(sql: "SELECT MIN(next_attempt_at) FROM job WHERE state = 'queued'")) }
    }

    /// Count and estimated cost by state of the jobs in `ids`, read from three narrow columns: the progress line
    /// asks twice a second and must not decode every job's spec to draw it.
    public func tally(of ids: Set<Int64>) throws -> [JobState: (count: Int, costMicros: Int64)] {
        try read { db in
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

    /// Jobs that hold (or may hold) a request at fal: what a 429 lowers the concurrency limit below.
    public func atFalCount() throws -> Int {
        try read { try Int.fetchOne($0.cachedStatement(sql: "SELECT COUNT(*) FROM job WHERE state IN ('submitting', 'submit_unknown', 'in_queue', 'in_progress')")) ?? 0 }
    }

    /// Whether any job waits for budget (an index lookup, cheap enough for every dispatcher pass).
    public func hasHeldJob() throws -> Bool {
        try read { try Bool.fetchOne($0, sql: "SELECT EXISTS (SELECT 1 FROM job WHERE state = 'held')") ?? false }
    }

    public func events(of jobID: Int64) throws -> [JobEvent] {
        try read { try Row.fetchAll($0, sql: "SELECT * FROM event WHERE job_id = ? ORDER BY id", arguments: [jobID]).map(JobEvent.init(row:)) }
    }

    /// Events after `id` that operators caused, oldest first: the daemon logs them, since they happen elsewhere.
    public func operatorEvents(after id: Int64) throws -> [JobEvent] {
        try read {
            try Row.fetchAll($0.cachedStatement(sql: "SELECT * FROM event WHERE id > ? AND by_operator ORDER BY id"), arguments: [id])
                .map(JobEvent.init(row:))
        }
    }

    public func jobPage(inBatch batchID: Int64, state: JobState?, search: String?, limit: Int, offset: Int) throws -> (jobs: [JobRecord], total: Int) {
        var conditions = ["batch_id = ?"]
        var arguments: [any DatabaseValueConvertible] = [batchID]
        if let state {
            conditions.append("state = ?")
            arguments.append(state.rawValue)
        }
        if let search, !search.isEmpty {
            let pattern = "%" + search.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_") + "%"
            conditions.append("(name LIKE ? ESCAPE '\\' OR spec_json LIKE ? ESCAPE '\\')")
            arguments += [pattern, pattern]
        }
        let filter = conditions.joined(separator: " AND ")
        return try read { db in
            let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job WHERE \(filter)", arguments: StatementArguments(arguments)) ?? 0
            let jobs = try Self.fetchJobs(db, "SELECT * FROM job WHERE \(filter) ORDER BY id LIMIT ? OFFSET ?", StatementArguments(arguments + [limit, offset]))
            return (jobs, total)
        }
    }

    public func unfinishedCount(inBatch batchID: Int64) throws -> Int {
        try read { db in
            try Int.fetchOne(
                db.cachedStatement(sql: "SELECT COUNT(*) FROM job WHERE batch_id = ? AND state NOT IN ('completed', 'failed', 'cancelled')"),
                arguments: [batchID]) ?? 0
        }
    }

    public func batchOverview() throws -> [Int64: BatchOverview] {
        try read { db in
            var overview: [Int64: BatchOverview] = [:]
            let sql = "SELECT batch_id, state, COUNT(*) AS n, COALESCE(SUM(estimated_cost_micros), 0) AS micros FROM job GROUP BY batch_id, state"
            for row in try Row.fetchAll(db, sql: sql) {
                guard let state = JobState(rawValue: row["state"]) else { continue }
                overview[row["batch_id"], default: BatchOverview()].byState[state] = (row["n"], row["micros"])
            }
            for row in try Row.fetchAll(db, sql: "SELECT batch_id, SUM(micros) AS micros FROM spend GROUP BY batch_id") {
                overview[row["batch_id"], default: BatchOverview()].spentMicros = row["micros"]
            }
            return overview
        }
    }

    public func stateEvents(after id: Int64, limit: Int) throws -> [JobEvent] {
        try read { db in
            try Row.fetchAll(
                db.cachedStatement(sql: "SELECT * FROM event WHERE id > ? AND kind = 'state' ORDER BY id LIMIT ?"), arguments: [id, limit]
            ).map(JobEvent.init(row:))
        }
    }

    public func attempts(of jobID: Int64) throws -> [AttemptRecord] {
        try read { try Row.fetchAll($0, sql: "SELECT * FROM attempt WHERE job_id = ? ORDER BY number", arguments: [jobID]).map(AttemptRecord.init(row:)) }
    }

    /// Whether a job or an attempt already holds this fal request id: reconciliation must never adopt one twice.
    /// (Asked per candidate, by index: reading every known id per look cost a set of 20,000 strings each time.)
    public func isKnownRequestID(_ requestID: String) throws -> Bool {
        try read { db in
            try Bool.fetchOne(
                db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM job WHERE request_id = ?) OR EXISTS (SELECT 1 FROM attempt WHERE request_id = ?)"),
                arguments: [requestID, requestID]) ?? false
        }
    }

    /// Every request id any attempt ever had, with its job: old ids in logs still find their job.
    public func attemptRequestIDs() throws -> [String: Int64] {
        try read { db in
            var map: [String: Int64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT request_id, job_id FROM attempt WHERE request_id IS NOT NULL") {
                map[row["request_id"]] = row["job_id"]
            }
            return map
        }
    }

    /// The oldest queued job's acceptance time, for "oldest queued" in `status`.
    public func oldestQueued() throws -> Date? {
        try read { try Date.fetchOne($0, sql: "SELECT MIN(created_at) FROM job WHERE state IN ('queued', 'held')") }
    }

    /// The output root the last runner on this store wrote to.
    public func outputRoot() throws -> String? {
        try read { try String.fetchOne($0, sql: "SELECT value FROM meta WHERE key = 'output_root'") }
    }

    /// Remembers the runner's output root for commands run from another folder.
    public func recordOutputRoot(_ path: String) throws {
        try write { try $0.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('output_root', ?)", arguments: [path]) }
    }

    /// The fal base URL the last runner sent to, when it was not fal's own hosts.
    public func falBase() throws -> String? {
        try read { try String.fetchOne($0, sql: "SELECT value FROM meta WHERE key = 'fal_base'") }.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Remembers the runner's fal base URL (empty: fal's own hosts) for operator commands.
    public func recordFalBase(_ url: String?) throws {
        try write { try $0.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('fal_base', ?)", arguments: [url ?? ""]) }
    }

    /// The newest event's id: every change to a job writes an event, so this moving is a cheap (index-only)
    /// sign that counts may have changed, and an idle daemon need not recount 10,000 jobs to learn nothing did.
    public func lastEventID() throws -> Int64 {
        try read { try Int64.fetchOne($0, sql: "SELECT MAX(id) FROM event") ?? 0 }
    }
}

/// The upload cache.
extension JobStore {
    /// The fal URL of an image already uploaded through the storage `origin` at or after `notBefore`, by its
    /// SHA-256: a URL from another origin (an emulator that is gone) or past its lifetime is never reused.
    public func cachedUpload(sha256: String, origin: String, notBefore: Date) throws -> String? {
        try read {
            try String.fetchOne(
                $0.cachedStatement(sql: "SELECT file_url FROM upload WHERE sha256 = ? AND origin = ? AND uploaded_at >= ?"),
                arguments: [sha256, origin, notBefore])
        }
    }

    /// Remembers an uploaded image (one row per content: a new origin's upload replaces the old one).
    public func recordUpload(_ upload: UploadedImage, at now: Date = Date()) throws {
        try write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO upload (sha256, file_url, byte_count, content_type, uploaded_at, origin) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [upload.sha256, upload.fileURL, upload.byteCount, upload.contentType, now, upload.origin])
        }
    }
}
