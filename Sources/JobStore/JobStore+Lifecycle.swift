import Foundation
internal import GRDB

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

    /// The request's columns; `log_lines` counts lines of this request's log (fal resends it whole), so it starts
    /// again at 0: a new request's first lines must not be taken for ones already recorded.
    var fields: [JobField] {
        [.requestID(id), .statusURL(statusURL), .responseURL(responseURL), .cancelURL(cancelURL), .logLines(0)]
    }
}

extension JobStore {
    /// uploading → submitting: records the exact body about to be sent, and the origin it goes to, and opens an
    /// attempt, before anything leaves. An operator's cancel that came while the job was queued or uploading wins
    /// here, in the same transaction: nothing moves, and the caller cancels it (nothing is at fal yet).
    @discardableResult
    public func beginSubmit(
        _ id: Int64, input: String, origin: String? = nil, options: String? = nil, runner: String? = nil, at now: Date = Date()
    ) throws -> SubmitStart {
        try write { db in
            if try Bool.fetchOne(db.cachedStatement(sql: "SELECT cancel_requested FROM job WHERE id = ? AND state = 'uploading'"), arguments: [id]) == true {
                guard let job = try Self.fetchJob(db, id) else { throw StoreError.noSuchJob(id) }
                return .cancelRequested(job)
            }
            let number = (try Int.fetchOne(db.cachedStatement(sql: "SELECT MAX(number) FROM attempt WHERE job_id = ?"), arguments: [id]) ?? 0) + 1
            let job = try Self.transition(
                db, id, from: .uploading, to: .submitting,
                set: [.submittedInput(input), .submitStartedAt(now), .requestID(nil), .statusURL(nil), .responseURL(nil), .cancelURL(nil),
                      .falOrigin(origin), .lastAttempt(number), .submitOptions(options)],
                event: "submitting (attempt \(number))", at: now)
            try db.cachedStatement(sql: "INSERT INTO attempt (job_id, number, started_at, outcome, counted, attempted_by) VALUES (?, ?, ?, 'submitting', 0, ?)")
                .execute(arguments: [id, number, now, runner])
            return .submit(job)
        }
    }

    /// submitting → in_queue: fal answered with a request id, committed at once; the submit enters the ledger.
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

    /// submitting → submit_unknown: the body was sent but no usable answer came back; counted as spend.
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

    /// submitting → queued (retry at `retryAt`) or → failed (no `retryAt`): fal refused, or the submit never left.
    @discardableResult
    public func recordRefused(_ id: Int64, refusal: Refusal, at now: Date = Date()) throws -> JobRecord {
        try write { db in
            let error = refusal.error
            var fields: [JobField] = [.lastError(error.message), .submitStartedAt(nil)]
            if refusal.counted { fields.append(.addAttempts(1)) }
            if refusal.deferral { fields.append(.addDeferrals(1)) }
            let job: JobRecord
            if let retryAt = refusal.retryAt {
                job = try Self.transition(
                    db, id, from: .submitting, to: .queued, set: fields + [.nextAttemptAt(retryAt)],
                    event: "submit refused (\(error.reason)): \(error.message); retrying at \(Self.timestamp(retryAt))", at: now)
            } else {
                job = try Self.transition(
                    db, id, from: .submitting, to: .failed, set: fields + [.finishedAt(now), .retryBy(.submit), .manifestPath(refusal.manifestPath)],
                    event: "submit refused (\(error.reason)): \(error.message); giving up", at: now)
            }
            try Self.closeAttempt(db, id, outcome: refusal.outcome, counted: refusal.counted, requestID: nil, error: error, at: now, end: true)
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

    /// submit_unknown → queued: nothing appeared within the grace period; submit again, flagged as a possible
    /// duplicate; or → failed when that was attempt `maxAttempts`. One transaction either way.
    @discardableResult
    public func giveUpReconciling(
        _ id: Int64, graceDescription: String, maxAttempts: Int = .max, manifestPath: String? = nil, at now: Date = Date()
    ) throws -> JobRecord {
        try write { db in
            let attempts = try Int.fetchOne(db.cachedStatement(sql: "SELECT attempts FROM job WHERE id = ?"), arguments: [id]) ?? 0
            let lost = StoredError(reason: "lost", message: "not found in fal's listing within \(graceDescription)")
            let job: JobRecord
            if attempts >= maxAttempts {
                job = try Self.transition(
                    db, id, from: .submitUnknown, to: .failed,
                    set: [.lastError("gave up after \(attempts) attempts (the last one \(lost.message))"), .finishedAt(now), .retryBy(.submit),
                          .manifestPath(manifestPath)],
                    event: "no matching request appeared in fal's listing within \(graceDescription); that was attempt \(attempts) of \(maxAttempts): failed", at: now)
            } else {
                job = try Self.transition(
                    db, id, from: .submitUnknown, to: .queued, set: [.possibleDuplicate(true), .nextAttemptAt(nil), .submitStartedAt(nil)],
                    event: "no matching request appeared in fal's listing within \(graceDescription); submitting again (possible duplicate)", at: now)
                try Self.flagPossibleDuplicate(db, jobID: id)
            }
            try Self.closeAttempt(db, id, outcome: .lost, counted: true, requestID: nil, error: lost, at: now, end: true)
            return job
        }
    }

    /// uploading → queued to try again at `retryAt`, without spending an attempt (nothing reached the model).
    @discardableResult
    public func postpone(_ id: Int64, from: JobState, error: StoredError, retryAt: Date, at now: Date = Date()) throws -> JobRecord {
        try write { db in
            try Self.transition(
                db, id, from: from, to: .queued, set: [.lastError(error.message), .nextAttemptAt(retryAt), .addDeferrals(1)],
                event: "\(error.message); trying again at \(Self.timestamp(retryAt))", at: now)
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
}
