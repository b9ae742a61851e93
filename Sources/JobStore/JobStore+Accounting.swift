import Foundation
import KlingCore
internal import GRDB

extension JobStore {
    /// v5: what each ledger row became (so `report` splits money by outcome after the job is purged), its seconds
    /// of video and whether it may have been paid twice; per job, the submit headers as sent and what the
    /// downloaded video turned out to be (its duration and size, and why it needs a look).
    static func migrateToAccounting(_ db: Database) throws {
        try db.alter(table: "spend") { t in
            t.add(column: "seconds", .integer).notNull().defaults(to: 0)
            // completed, failed or cancelled: how the request this money went to ended; NULL while it runs.
            t.add(column: "outcome", .text)
            t.add(column: "possible_duplicate", .boolean).notNull().defaults(to: false)
        }
        try db.alter(table: "job") { t in
            t.add(column: "submit_options", .text)
            t.add(column: "video_duration_ms", .integer)
            t.add(column: "video_width", .integer)
            t.add(column: "video_height", .integer)
            t.add(column: "needs_review", .text)
        }
        // A request that failed at fal is failed money whatever its job did next; the other rows take their job's end.
        try db.execute(sql: """
            UPDATE spend SET seconds = COALESCE((SELECT duration_seconds FROM job WHERE job.id = spend.job_id), CAST(ROUND(micros / 112000.0) AS INTEGER));
            UPDATE spend SET outcome = 'failed' WHERE EXISTS (
                SELECT 1 FROM attempt WHERE attempt.job_id = spend.job_id AND attempt.number = spend.attempt AND attempt.outcome = 'failed_at_fal');
            UPDATE spend SET outcome = (SELECT state FROM job WHERE job.id = spend.job_id AND state IN ('completed', 'failed', 'cancelled'))
            WHERE outcome IS NULL;
            UPDATE spend SET possible_duplicate = 1 WHERE kind = 'unknown' AND EXISTS (
                SELECT 1 FROM attempt WHERE attempt.job_id = spend.job_id AND attempt.number = spend.attempt AND attempt.outcome = 'lost');
            """)
    }

    /// Labels the job's ledger rows with how their requests ended, in the transaction of the job's move. Rows of
    /// earlier requests keep their label (a request that failed stays failed money after a paid resubmission),
    /// except that a completion also claims the row of its own request (a failed download that `retry` finished).
    static func settleSpend(_ db: Database, jobID: Int64, outcome: JobState, onlyCurrentRequest: Bool = false) throws {
        if onlyCurrentRequest {
            try db.cachedStatement(sql: "UPDATE spend SET outcome = ? WHERE job_id = ? AND request_id = (SELECT request_id FROM job WHERE id = ?)")
                .execute(arguments: [outcome.rawValue, jobID, jobID])
            return
        }
        // A completion takes every open row (lost submits included: they were part of getting this video) and its
        // own request's row. A cancel is "cancelled at fal" only for the request it held; other open rows of a job
        // that did not complete (lost submits never found) count as failed.
        try db.cachedStatement(sql: """
            UPDATE spend SET outcome = CASE
                WHEN ? = 'cancelled' AND request_id IS NOT (SELECT request_id FROM job WHERE id = ?) THEN 'failed' ELSE ? END
            WHERE job_id = ? AND (outcome IS NULL OR (? = 'completed' AND request_id = (SELECT request_id FROM job WHERE id = ?)))
            """).execute(arguments: [outcome.rawValue, jobID, outcome.rawValue, jobID, outcome.rawValue, jobID])
    }

    /// A lost submit that was given up on: its ledger row may be a second payment for the same job.
    static func flagPossibleDuplicate(_ db: Database, jobID: Int64) throws {
        try db.cachedStatement(sql: "UPDATE spend SET possible_duplicate = 1 WHERE job_id = ? AND kind = 'unknown'").execute(arguments: [jobID])
    }

    /// The ledger rows of one job, oldest first: what its manifest says it cost.
    public func spend(ofJob id: Int64) throws -> [SpendRecord] {
        try read { try Row.fetchAll($0, sql: "SELECT * FROM spend WHERE job_id = ? ORDER BY id", arguments: [id]).map(SpendRecord.init(row:)) }
    }

    /// Ledger rows sent in `[since, until)`, oldest first; nil bounds are open.
    public func ledger(since: Date?, until: Date?) throws -> [SpendRecord] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM spend WHERE at >= ? AND at < ? ORDER BY id", arguments: [since ?? .distantPast, until ?? .distantFuture])
                .map(SpendRecord.init(row:))
        }
    }

    /// Completed jobs whose video needs a look (`list --flagged`), oldest first.
    public func flaggedJobs() throws -> [JobRecord] {
        try read { try Self.fetchJobs($0, "SELECT * FROM job WHERE needs_review IS NOT NULL ORDER BY id") }
    }
}
