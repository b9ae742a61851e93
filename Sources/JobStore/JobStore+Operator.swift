import Foundation
import GRDB

/// What operators do to jobs from the CLI, while a runner may be working on the same store.
extension JobStore {
    /// Marks a job for cancellation, so a runner that holds it stops and cancels it at fal. False when it is final.
    @discardableResult
    public func requestCancel(_ id: Int64, at now: Date = Date()) throws -> Bool {
        try writer.write { db in
            try db.execute(
                sql: "UPDATE job SET cancel_requested = 1, updated_at = ? WHERE id = ? AND state NOT IN ('completed', 'failed', 'cancelled')",
                arguments: [now, id])
            guard db.changesCount == 1 else { return false }
            try Self.insertEvent(db, jobID: id, at: now, kind: .note, message: "cancel requested by an operator")
            return true
        }
    }

    /// `from` → cancelled, guarded; the open attempt (if any) is closed as cancelled.
    @discardableResult
    public func recordCancelled(_ id: Int64, from: JobState, note: String, at now: Date = Date()) throws -> JobRecord {
        try writer.write { db in
            let job = try Self.transition(
                db, id, from: from, to: .cancelled, set: [.cancelRequested(true), .finishedAt(now), .nextAttemptAt(nil), .heldReason(nil)],
                event: note, at: now)
            try db.execute(
                sql: "UPDATE attempt SET outcome = 'cancelled', ended_at = ? WHERE job_id = ? AND ended_at IS NULL",
                arguments: [now, id])
            return job
        }
    }

    /// failed or cancelled → queued with a fresh set of attempts; its history (attempts, events) is kept.
    @discardableResult
    public func requeue(_ id: Int64, from: JobState, at now: Date = Date()) throws -> JobRecord {
        try writer.write { db in
            try Self.transition(
                db, id, from: from, to: .queued,
                set: [
                    .nextAttemptAt(nil), .lastError(nil), .requestID(nil), .statusURL(nil), .responseURL(nil), .cancelURL(nil),
                    .submittedInput(nil), .submitStartedAt(nil), .possibleDuplicate(false), .cancelRequested(false), .manifestPath(nil),
                    .videoURL(nil), .videoExpectedBytes(nil), .resultJSON(nil), .finishedAt(nil), .deferrals(0), .reservedMicros(0), .reservedDay(nil),
                    .resetAttempts,
                ],
                event: "requeued by an operator (attempt history kept)", at: now)
        }
    }

    /// Forgets finished jobs (completed, failed, cancelled) that finished before `cutoff`, with their history,
    /// and batches left empty. Videos and manifests on disk are not touched.
    public func purge(finishedBefore cutoff: Date) throws -> (jobs: Int, batches: Int) {
        try writer.write { db in
            try db.execute(
                sql: "DELETE FROM job WHERE state IN ('completed', 'failed', 'cancelled') AND COALESCE(finished_at, updated_at) < ?",
                arguments: [cutoff])
            let jobs = db.changesCount
            try db.execute(sql: "DELETE FROM batch WHERE NOT EXISTS (SELECT 1 FROM job WHERE job.batch_id = batch.id)")
            return (jobs, db.changesCount)
        }
    }
}
