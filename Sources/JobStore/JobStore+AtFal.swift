import Foundation
import KlingCore
internal import GRDB

extension JobStore {
    /// in_queue → in_progress.
    @discardableResult
    public func markStarted(_ id: Int64, at now: Date = Date()) throws -> JobRecord {
        try write { db in try Self.transition(db, id, from: .inQueue, to: .inProgress, set: [.startedAt(now)], event: "running at fal", at: now) }
    }

    /// in_queue / in_progress → downloading: fal finished with a result.
    @discardableResult
    public func recordResult(_ id: Int64, from: JobState, result: FalResult, at now: Date = Date()) throws -> JobRecord {
        try write { db in
            try Self.endRequest(
                db, id, from: from, to: .downloading,
                set: [.resultJSON(result.resultJSON), .videoURL(result.videoURL), .videoExpectedBytes(result.expectedBytes), .falMetrics(result.metrics),
                      .falCompletedAt(now), .nextAttemptAt(nil), .deferrals(0), .lastError(nil)],
                event: "fal finished; downloading the video", outcome: .succeeded, error: nil, at: now)
        }
    }

    /// in_queue / in_progress → queued (a new attempt at `retryAt`) or → failed: the request failed at fal.
    @discardableResult
    public func recordFalFailure(_ id: Int64, from: JobState, failure: FalFailure, at now: Date = Date()) throws -> JobRecord {
        try write { db in
            let error = failure.error
            let fields: [JobField] = [.lastError(error.message), .falMetrics(failure.metrics), .falCompletedAt(now)]
            let because = "request failed at fal (\(error.reason)): \(error.message)"
            guard let retryAt = failure.retryAt else {
                return try Self.endRequest(
                    db, id, from: from, to: .failed, set: fields + [.finishedAt(now), .retryBy(failure.retryBy), .manifestPath(failure.manifestPath)],
                    event: because, outcome: .failedAtFal, error: error, at: now)
            }
            return try Self.endRequest(
                db, id, from: from, to: .queued, set: fields + [.nextAttemptAt(retryAt), .submitStartedAt(nil)],
                event: "\(because); a new request at \(Self.timestamp(retryAt))", outcome: .failedAtFal, error: error, at: now)
        }
    }

    /// downloading → completed: video and manifest are on disk.
    @discardableResult
    public func recordDownloaded(_ id: Int64, video: DownloadedVideo, manifestPath: String, hook: String? = nil, at now: Date = Date()) throws -> JobRecord {
        try write { db in
            try Self.transition(
                db, id, from: .downloading, to: .completed,
                set: [.videoPath(video.path), .videoBytes(video.bytes), .videoSHA256(video.sha256), .manifestPath(manifestPath), .finishedAt(now),
                      .nextAttemptAt(nil), .lastError(nil), .videoDurationMillis(video.durationMillis), .videoWidth(video.width),
                      .videoHeight(video.height), .needsReview(video.needsReview), .hookCommand(hook), .hookState(hook == nil ? nil : "pending")],
                event: "completed: \(video.path) (\(video.bytes) bytes)" + (video.needsReview.map { "; needs review: \($0)" } ?? ""), at: now)
        }
    }

    /// Any non-final state → failed, with the reason, what `retry` must do to finish the job, and its manifest.
    @discardableResult
    public func fail(
        _ id: Int64, from: JobState, error: StoredError, retryBy: RetryRoute = .submit, manifestPath: String? = nil, at now: Date = Date()
    ) throws -> JobRecord {
        try write { db in
            let fields: [JobField] = [.lastError(error.message), .finishedAt(now), .manifestPath(manifestPath), .retryBy(retryBy)]
            let event = "failed (\(error.reason)): \(error.message)"
            guard from.isAtFal else { return try Self.transition(db, id, from: from, to: .failed, set: fields, event: event, at: now) }
            return try Self.endRequest(db, id, from: from, to: .failed, set: fields, event: event, outcome: .failedAtFal, error: error, at: now)
        }
    }

    /// Records one status poll and any new fal log lines (fal resends the whole log each time).
    /// Returns false when the job has moved or an operator asked to cancel it: the poller should look again.
    @discardableResult
    public func notePoll(_ id: Int64, in state: JobState, logs: [String], at now: Date = Date()) throws -> Bool {
        try write { db in
            let seen = try Int.fetchOne(db.cachedStatement(sql: "SELECT log_lines FROM job WHERE id = ?"), arguments: [id]) ?? 0
            var fields: [JobField] = [.addStatusPolls(1)]
            if logs.count > seen {
                for line in logs[seen...] { try Self.insertEvent(db, jobID: id, at: now, kind: .log, message: line) }
                fields.append(.logLines(logs.count))
            }
            guard try Self.update(db, id, in: state, set: fields, at: now) else { return false }
            return try Bool.fetchOne(db.cachedStatement(sql: "SELECT NOT cancel_requested FROM job WHERE id = ?"), arguments: [id]) ?? false
        }
    }

    /// Shows why a job that stays where it is waits (a full output disk), without moving it.
    public func noteWaiting(_ id: Int64, in state: JobState, reason: String, at now: Date = Date()) throws {
        _ = try write { db in try Self.update(db, id, in: state, set: [.lastError(reason)], at: now) }
    }

    /// Moves a job whose request has ended at fal, and closes its attempt in the same transaction, counted.
    static func endRequest(
        _ db: Database, _ id: Int64, from: JobState, to: JobState, set fields: [JobField], event: String,
        outcome: AttemptOutcome, error: StoredError?, at now: Date
    ) throws -> JobRecord {
        let job = try transition(db, id, from: from, to: to, set: fields, event: event, at: now)
        // A request that failed at fal stays failed money, whatever its job does next.
        if outcome == .failedAtFal && !to.isTerminal { try settleSpend(db, jobID: id, outcome: .failed, onlyCurrentRequest: true) }
        try closeAttempt(db, id, outcome: outcome, counted: true, requestID: nil, error: error, at: now, end: true)
        return job
    }

    /// Updates the job's latest attempt; `end` stamps its end time (an accepted attempt ends with its request).
    static func closeAttempt(
        _ db: Database, _ jobID: Int64, outcome: AttemptOutcome, counted: Bool, requestID: String?, error: StoredError?, at now: Date, end: Bool
    ) throws {
        try db.cachedStatement(sql: """
            UPDATE attempt SET outcome = ?, counted = ?, request_id = COALESCE(?, request_id),
                   error_reason = COALESCE(?, error_reason), error_message = COALESCE(?, error_message),
                   http_status = COALESCE(?, http_status), ended_at = CASE WHEN ? THEN ? ELSE ended_at END
            WHERE id = (SELECT MAX(id) FROM attempt WHERE job_id = ?)
            """).execute(arguments: [outcome.rawValue, counted, requestID, error?.reason, error?.message, error?.httpStatus, end, now, jobID])
    }

    static func timestamp(_ date: Date) -> String { date.iso8601 }
}
