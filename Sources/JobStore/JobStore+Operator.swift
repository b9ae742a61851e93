import Foundation
internal import GRDB

/// What operators do to jobs from the CLI, while a runner may be working on the same store.
extension JobStore {
    /// Marks a job for cancellation, so a runner that holds it stops and cancels it at fal. False when it is final.
    @discardableResult
    public func requestCancel(_ id: Int64, at now: Date = Date()) throws -> Bool {
        try write { db in
            try db.execute(
                sql: "UPDATE job SET cancel_requested = 1, updated_at = ? WHERE id = ? AND state NOT IN ('completed', 'failed', 'cancelled')",
                arguments: [now, id])
            guard db.changesCount == 1 else { return false }
            try Self.insertEvent(db, jobID: id, at: now, kind: .note, message: "cancel requested by an operator", byOperator: true)
            return true
        }
    }

    /// `from` → cancelled, guarded; the open attempt (if any) is closed as cancelled; `manifestPath` names the
    /// manifest written for it just before.
    @discardableResult
    public func recordCancelled(_ id: Int64, from: JobState, note: String, manifestPath: String? = nil, at now: Date = Date()) throws -> JobRecord {
        try write { db in
            let job = try Self.transition(
                db, id, from: from, to: .cancelled,
                set: [.cancelRequested(true), .finishedAt(now), .nextAttemptAt(nil), .heldReason(nil), .manifestPath(manifestPath)],
                event: note, byOperator: true, at: now)
            try db.execute(
                sql: "UPDATE attempt SET outcome = 'cancelled', ended_at = ? WHERE job_id = ? AND ended_at IS NULL",
                arguments: [now, id])
            return job
        }
    }

    /// failed or cancelled → queued, its history (attempts, events) kept. `route` says how it is finished:
    /// `.download` and `.result` keep its request and have the claim resume it without a submit; the submit
    /// routes clear the request and start a fresh set of attempts.
    @discardableResult
    public func requeue(_ id: Int64, from: JobState, route: RetryRoute = .submit, at now: Date = Date()) throws -> JobRecord {
        try write { db in
            let common: [JobField] = [
                .nextAttemptAt(nil), .lastError(nil), .cancelRequested(false), .manifestPath(nil), .finishedAt(nil), .deferrals(0),
                .retryBy(nil), .heldReason(nil),
            ]
            switch route {
            case .download, .result:
                let what = route == .download ? "download the video again" : "fetch the result of request \(try Self.requestID(db, id) ?? "?") again"
                return try Self.transition(
                    db, id, from: from, to: .queued, set: common + [.resume(route)],
                    event: "requeued by an operator to \(what); nothing will be submitted", byOperator: true, at: now)
            case .submit, .paidResubmit:
                // A lost submit that was never found may have run at fal: sending the job again may pay twice.
                try Self.flagPossibleDuplicate(db, jobID: id)
                return try Self.transition(
                    db, id, from: from, to: .queued,
                    set: common + [
                        .requestID(nil), .statusURL(nil), .responseURL(nil), .cancelURL(nil), .submittedInput(nil), .submitStartedAt(nil),
                        .possibleDuplicate(false), .videoURL(nil), .videoExpectedBytes(nil), .resultJSON(nil), .reservedMicros(0),
                        .reservedDay(nil), .falOrigin(nil), .resume(nil), .resetAttempts,
                    ],
                    event: route == .paidResubmit
                        ? "requeued by an operator for a new, paid submission (fal no longer has the result; attempt history kept)"
                        : "requeued by an operator (attempt history kept)", byOperator: true, at: now)
            }
        }
    }

    static func requestID(_ db: Database, _ id: Int64) throws -> String? {
        try String.fetchOne(db, sql: "SELECT request_id FROM job WHERE id = ?", arguments: [id])
    }

    /// Forgets finished jobs (completed, failed, cancelled) that finished before `cutoff`, with their history,
    /// and batches left empty. Videos and manifests on disk are not touched, and neither is the spend ledger:
    /// budgets and reports keep counting what those jobs cost.
    public func purge(finishedBefore cutoff: Date) throws -> (jobs: Int, batches: Int) {
        try write { db in
            try db.execute(
                sql: "DELETE FROM job WHERE state IN ('completed', 'failed', 'cancelled') AND COALESCE(finished_at, updated_at) < ?",
                arguments: [cutoff])
            let jobs = db.changesCount
            try db.execute(sql: "DELETE FROM batch WHERE NOT EXISTS (SELECT 1 FROM job WHERE job.batch_id = batch.id)")
            return (jobs, db.changesCount)
        }
    }
}

extension JobStore {
    /// Gives up on every unfinished job whose request went to `origin` (an emulator that is gone, say): each is
    /// failed, to be retried only with `retry --resubmit`, since the result it may have paid for is out of reach.
    /// Returns the jobs failed.
    public func abandon(origin: String, at now: Date = Date()) throws -> [JobRecord] {
        try write { db in
            let rows = try Row.fetchAll(
                db, sql: """
                    SELECT id, state FROM job WHERE fal_origin = ? AND state NOT IN ('completed', 'failed', 'cancelled', 'held')
                      AND (state != 'queued' OR resume IS NOT NULL)
                    ORDER BY id
                    """, arguments: [origin])
            return try rows.map { row in
                let from = JobState(rawValue: row["state"]) ?? .queued
                return try Self.transition(
                    db, row["id"], from: from, to: .failed,
                    set: [.lastError("abandoned: its request was at \(origin), which this store no longer uses"), .finishedAt(now),
                          .retryBy(.paidResubmit), .resume(nil)],
                    event: "abandoned by an operator: its request was at \(origin); retry with --resubmit to submit it again", byOperator: true, at: now)
            }
        }
    }
}
