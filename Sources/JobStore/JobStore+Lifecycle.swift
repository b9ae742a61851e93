import Foundation
import GRDB

/// What went wrong in an attempt or step, as stored: a reason code for machines, a message for people.
public struct StoredError: Sendable, Hashable {
    public var reason: String
    public var message: String
    public var httpStatus: Int?

    public init(reason: String, message: String, httpStatus: Int? = nil) {
        self.reason = reason
        self.message = message
        self.httpStatus = httpStatus
    }

    /// The same error told differently.
    public func with(message: String) -> StoredError {
        StoredError(reason: reason, message: message, httpStatus: httpStatus)
    }
}

/// The request fal created, as the store keeps it.
public struct StoredRequest: Sendable, Hashable {
    public var id: String
    public var statusURL: String
    public var responseURL: String
    public var cancelURL: String

    public init(id: String, statusURL: String, responseURL: String, cancelURL: String) {
        self.id = id
        self.statusURL = statusURL
        self.responseURL = responseURL
        self.cancelURL = cancelURL
    }

    var fields: [JobField] {
        [.requestID(id), .statusURL(statusURL), .responseURL(responseURL), .cancelURL(cancelURL)]
    }
}

extension JobStore {
    /// uploading → submitting: records the exact body about to be sent, and the origin it goes to, and opens an
    /// attempt, before anything leaves; uploading → cancelled instead when an operator asked to cancel the job.
    @discardableResult
    public func beginSubmit(_ id: Int64, input: String, origin: String? = nil, at now: Date = Date()) throws -> JobRecord {
        try write { db in
            // An operator's cancel that came while the job was queued or uploading wins here, in the same
            // transaction: nothing is at fal yet, so cancelling now costs nothing.
            if try Bool.fetchOne(db.cachedStatement(sql: "SELECT cancel_requested FROM job WHERE id = ? AND state = 'uploading'"), arguments: [id]) == true {
                return try Self.transition(
                    db, id, from: .uploading, to: .cancelled, set: [.finishedAt(now), .nextAttemptAt(nil), .heldReason(nil)],
                    event: "cancelled by an operator before it was submitted", at: now)
            }
            let job = try Self.transition(
                db, id, from: .uploading, to: .submitting,
                set: [.submittedInput(input), .submitStartedAt(now), .requestID(nil), .statusURL(nil), .responseURL(nil), .cancelURL(nil),
                      .falOrigin(origin)],
                event: "submitting", at: now)
            let number = (try Int.fetchOne(db, sql: "SELECT MAX(number) FROM attempt WHERE job_id = ?", arguments: [id]) ?? 0) + 1
            try db.execute(
                sql: "INSERT INTO attempt (job_id, number, started_at, outcome, counted) VALUES (?, ?, ?, 'submitting', 0)",
                arguments: [id, number, now])
            return job
        }
    }

    /// submitting → in_queue: fal answered with a request id, committed at once.
    @discardableResult
    public func recordAccepted(_ id: Int64, request: StoredRequest, at now: Date = Date()) throws -> JobRecord {
        try write { db in
            let job = try Self.transition(
                db, id, from: .submitting, to: .inQueue,
                set: request.fields + [.addAttempts(1), .submittedAt(now), .lastError(nil), .nextAttemptAt(nil), .deferrals(0)] + Self.releaseReservation,
                event: "submitted as request \(request.id)", at: now)
            try Self.closeAttempt(db, id, outcome: .accepted, counted: true, requestID: request.id, error: nil, at: now, end: false)
            try Self.recordSpend(db, jobID: id, kind: .accepted, requestID: request.id, at: now)
            return job
        }
    }

    /// submitting → submit_unknown: the body was sent but no usable answer came back.
    @discardableResult
    public func recordUnknown(_ id: Int64, error: StoredError, at now: Date = Date()) throws -> JobRecord {
        try write { db in
            let job = try Self.transition(
                db, id, from: .submitting, to: .submitUnknown, set: [.addAttempts(1), .lastError(error.message)] + Self.releaseReservation,
                event: "submit outcome unknown: \(error.message); looking for it in fal's request listing", at: now)
            try Self.closeAttempt(db, id, outcome: .unknown, counted: true, requestID: nil, error: error, at: now, end: false)
            try Self.recordSpend(db, jobID: id, kind: .unknown, requestID: nil, at: now)
            return job
        }
    }

    /// submitting → queued (retry at `retryAt`) or → failed (`retryAt` nil): fal refused, or the submit never left.
    /// `counted` says whether it spends one of the job's attempts; `deferral` whether it grows the not-sent backoff.
    @discardableResult
    public func recordRefused(
        _ id: Int64, outcome: AttemptOutcome, counted: Bool, deferral: Bool, error: StoredError, retryAt: Date?, at now: Date = Date()
    ) throws -> JobRecord {
        try write { db in
            var fields: [JobField] = [.lastError(error.message), .submitStartedAt(nil)]
            if counted { fields.append(.addAttempts(1)) }
            if deferral { fields.append(.addDeferrals(1)) }
            let job: JobRecord
            if let retryAt {
                job = try Self.transition(
                    db, id, from: .submitting, to: .queued, set: fields + [.nextAttemptAt(retryAt)],
                    event: "submit refused (\(error.reason)): \(error.message); retrying at \(Self.timestamp(retryAt))", at: now)
            } else {
                job = try Self.transition(
                    db, id, from: .submitting, to: .failed, set: fields + [.finishedAt(now), .retryBy(.submit)],
                    event: "submit refused (\(error.reason)): \(error.message); giving up", at: now)
            }
            try Self.closeAttempt(db, id, outcome: outcome, counted: counted, requestID: nil, error: error, at: now, end: true)
            return job
        }
    }

    /// submit_unknown → in_queue: the request was found in fal's listing and is adopted instead of paid for again.
    @discardableResult
    public func adopt(_ id: Int64, request: StoredRequest, at now: Date = Date()) throws -> JobRecord {
        try write { db in
            let job = try Self.transition(
                db, id, from: .submitUnknown, to: .inQueue, set: request.fields + [.submittedAt(now), .lastError(nil)] + Self.releaseReservation,
                event: "found request \(request.id) in fal's listing; adopted it", at: now)
            try Self.closeAttempt(db, id, outcome: .adopted, counted: true, requestID: request.id, error: nil, at: now, end: false)
            try Self.confirmSpend(db, jobID: id, requestID: request.id, at: now)
            return job
        }
    }

    /// submit_unknown → queued: nothing appeared within the grace period; submit again, flagged as a possible duplicate.
    @discardableResult
    public func giveUpReconciling(_ id: Int64, graceDescription: String, at now: Date = Date()) throws -> JobRecord {
        try write { db in
            let job = try Self.transition(
                db, id, from: .submitUnknown, to: .queued, set: [.possibleDuplicate(true), .nextAttemptAt(nil), .submitStartedAt(nil)],
                event: "no matching request appeared in fal's listing within \(graceDescription); submitting again (possible duplicate)", at: now)
            try Self.closeAttempt(
                db, id, outcome: .lost, counted: true, requestID: nil,
                error: StoredError(reason: "lost", message: "not found in fal's listing within \(graceDescription)"), at: now, end: true)
            return job
        }
    }

    /// in_queue → in_progress.
    @discardableResult
    public func markStarted(_ id: Int64, at now: Date = Date()) throws -> JobRecord {
        try transition(id, from: .inQueue, to: .inProgress, set: [.startedAt(now)], event: "running at fal", at: now)
    }

    /// in_queue / in_progress → downloading: fal finished with a result.
    @discardableResult
    public func recordResult(
        _ id: Int64, from: JobState, resultJSON: String, videoURL: String, expectedBytes: Int64?, metrics: String?, at now: Date = Date()
    ) throws -> JobRecord {
        try write { db in
            let job = try Self.transition(
                db, id, from: from, to: .downloading,
                set: [.resultJSON(resultJSON), .videoURL(videoURL), .videoExpectedBytes(expectedBytes), .falMetrics(metrics),
                      .falCompletedAt(now), .nextAttemptAt(nil), .deferrals(0), .lastError(nil)],
                event: "fal finished; downloading the video", at: now)
            try Self.closeAttempt(db, id, outcome: .succeeded, counted: true, requestID: nil, error: nil, at: now, end: true)
            return job
        }
    }

    /// in_queue / in_progress → queued (a new attempt at `retryAt`) or → failed: the request failed at fal.
    @discardableResult
    public func recordFalFailure(
        _ id: Int64, from: JobState, error: StoredError, retryAt: Date?, metrics: String? = nil, retryBy: RetryRoute = .submit, at now: Date = Date()
    ) throws -> JobRecord {
        try write { db in
            var fields: [JobField] = [.lastError(error.message), .falMetrics(metrics), .falCompletedAt(now)]
            let job: JobRecord
            if let retryAt {
                fields += [.nextAttemptAt(retryAt), .submitStartedAt(nil)]
                job = try Self.transition(
                    db, id, from: from, to: .queued, set: fields,
                    event: "request failed at fal (\(error.reason)): \(error.message); a new request at \(Self.timestamp(retryAt))", at: now)
            } else {
                job = try Self.transition(
                    db, id, from: from, to: .failed, set: fields + [.finishedAt(now), .retryBy(retryBy)],
                    event: "request failed at fal (\(error.reason)): \(error.message)", at: now)
            }
            try Self.closeAttempt(db, id, outcome: .failedAtFal, counted: true, requestID: nil, error: error, at: now, end: true)
            return job
        }
    }

    /// downloading → completed: video and manifest are on disk.
    @discardableResult
    public func recordDownloaded(
        _ id: Int64, videoPath: String, bytes: Int64, sha256: String, manifestPath: String, at now: Date = Date()
    ) throws -> JobRecord {
        try transition(
            id, from: .downloading, to: .completed,
            set: [.videoPath(videoPath), .videoBytes(bytes), .videoSHA256(sha256), .manifestPath(manifestPath), .finishedAt(now),
                  .nextAttemptAt(nil), .lastError(nil)],
            event: "completed: \(videoPath) (\(bytes) bytes)", at: now)
    }

    /// Any non-final state → failed, with the reason and what `retry` must do to finish the job.
    @discardableResult
    public func fail(
        _ id: Int64, from: JobState, error: StoredError, retryBy: RetryRoute = .submit, manifestPath: String? = nil, at now: Date = Date()
    ) throws -> JobRecord {
        try write { db in
            let job = try Self.transition(
                db, id, from: from, to: .failed,
                set: [.lastError(error.message), .finishedAt(now), .manifestPath(manifestPath), .retryBy(retryBy)],
                event: "failed (\(error.reason)): \(error.message)", at: now)
            if from == .submitting || from == .submitUnknown || from == .inQueue || from == .inProgress {
                try Self.closeAttempt(db, id, outcome: .failedAtFal, counted: true, requestID: nil, error: error, at: now, end: true)
            }
            return job
        }
    }

    /// uploading → queued to try again at `retryAt`, without spending an attempt (nothing reached the model).
    @discardableResult
    public func postpone(_ id: Int64, from: JobState, error: StoredError, retryAt: Date, at now: Date = Date()) throws -> JobRecord {
        try transition(
            id, from: from, to: .queued, set: [.lastError(error.message), .nextAttemptAt(retryAt), .addDeferrals(1)],
            event: "\(error.message); trying again at \(Self.timestamp(retryAt))", at: now)
    }

    /// Records one status poll and any new fal log lines (fal resends the whole log each time).
    /// Returns false when the job has moved or an operator asked to cancel it: the poller should look again.
    @discardableResult
    public func notePoll(_ id: Int64, in state: JobState, logs: [String], metrics: String? = nil, at now: Date = Date()) throws -> Bool {
        try write { db in
            let seen = try Int.fetchOne(db, sql: "SELECT log_lines FROM job WHERE id = ?", arguments: [id]) ?? 0
            var fields: [JobField] = [.addStatusPolls(1)]
            if logs.count > seen {
                for line in logs[seen...] { try Self.insertEvent(db, jobID: id, at: now, kind: .log, message: line) }
                fields.append(.logLines(logs.count))
            }
            guard try Self.update(db, id, in: state, set: fields, at: now) else { return false }
            return try Bool.fetchOne(db, sql: "SELECT NOT cancel_requested FROM job WHERE id = ?", arguments: [id]) ?? false
        }
    }

    /// After a crash: uploading → queued (nothing was paid) and submitting → submit_unknown (fal may have it).
    /// Returns how many jobs each rule moved.
    @discardableResult
    public func recoverInterrupted(at now: Date = Date()) throws -> (requeued: Int, unknown: Int) {
        try write { db in
            let uploading = try Int64.fetchAll(db, sql: "SELECT id FROM job WHERE state = 'uploading'")
            for id in uploading {
                _ = try Self.transition(db, id, from: .uploading, to: .queued, set: [], event: "interrupted while uploading; queued again", at: now)
            }
            let submitting = try Int64.fetchAll(db, sql: "SELECT id FROM job WHERE state = 'submitting'")
            for id in submitting {
                _ = try Self.transition(
                    db, id, from: .submitting, to: .submitUnknown, set: [.addAttempts(1), .lastError("interrupted while submitting")] + Self.releaseReservation,
                    event: "interrupted while submitting; fal may have the request, looking for it", at: now)
                try Self.closeAttempt(
                    db, id, outcome: .unknown, counted: true, requestID: nil,
                    error: StoredError(reason: "interrupted", message: "the runner stopped while submitting"), at: now, end: false)
                try Self.recordSpend(db, jobID: id, kind: .unknown, requestID: nil, at: now)
            }
            return (uploading.count, submitting.count)
        }
    }

    /// Updates the job's latest attempt; `end` stamps its end time (an accepted attempt ends with its request).
    static func closeAttempt(
        _ db: Database, _ jobID: Int64, outcome: AttemptOutcome, counted: Bool, requestID: String?, error: StoredError?, at now: Date, end: Bool
    ) throws {
        try db.execute(
            sql: """
                UPDATE attempt SET outcome = ?, counted = ?, request_id = COALESCE(?, request_id),
                       error_reason = COALESCE(?, error_reason), error_message = COALESCE(?, error_message),
                       http_status = COALESCE(?, http_status), ended_at = CASE WHEN ? THEN ? ELSE ended_at END
                WHERE id = (SELECT MAX(id) FROM attempt WHERE job_id = ?)
                """,
            arguments: [outcome.rawValue, counted, requestID, error?.reason, error?.message, error?.httpStatus, end, now, jobID])
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
