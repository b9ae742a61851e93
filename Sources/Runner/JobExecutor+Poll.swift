import FalClient
import Foundation
import JobStore
import KlingCore

extension JobExecutor {
    /// in_queue / in_progress: asks fal's status on an adaptive schedule until the request finishes, then fetches
    /// its result (→ downloading) or handles its failure (a new attempt, or failed).
    func poll(_ job: JobRecord) async throws -> JobRecord? {
        guard let handle = environment.handle(of: job) else {
            return try await fail(job, StoredError(reason: "request", message: "the job is at fal but has no request URLs"))
        }
        var current = job
        var tracker = PollTracker(job: job)
        while !Task.isCancelled {
            guard await pause(tracker.delay(configuration, expected: await environment.estimator.expected)) else { break }
            let status: RequestStatus
            do {
                status = try await environment.client.status(handle, logs: true)
                tracker.failures = 0
            } catch let error as FalError {
                if error.kind == .notFound {
                    return try await fail(
                        current, StoredError(reason: "not_found", message: "fal no longer knows request \(handle.requestID)", httpStatus: 404),
                        retryBy: .paidResubmit)
                }
                if error.disposition == .pauseSubmissions { await environment.gate.pause(error.description) }
                tracker.failures += 1
                logger.warning("status call failed (\(tracker.failures) in a row): \(error)", metadata: metadata(current))
                continue
            }
            environment.crash.pass(.polled)
            tracker.polled()
            guard try await store.notePoll(current.id, in: current.state, logs: status.logs.map(\.message)) else {
                return try await movedWhilePolling(current)
            }
            switch status.state {
            case .inQueue(let position):
                tracker.seenQueued(at: position)
            case .inProgress:
                if current.state == .inQueue {
                    current = try await store.markStarted(current.id)
                    tracker.seenRunning()
                    logger.info("running at fal", metadata: metadata(current))
                }
            case .completed:
                if let inference = status.metrics?["inference_time"]?.doubleValue { await environment.estimator.record(inference) }
                return try await fetchResult(current, handle: handle, status: status)
            }
        }
        throw CancellationError()
    }

    /// The poll found the job moved by someone else, or an operator asked to cancel it: this runner holds it, so it
    /// cancels it at fal here.
    private func movedWhilePolling(_ job: JobRecord) async throws -> JobRecord? {
        guard let fresh = try await store.job(job.id) else { return nil }
        guard fresh.cancelRequested && fresh.state.isAtFal else { return fresh }
        _ = try await JobCanceller(environment: environment).cancel(fresh.id)
        return try await store.job(job.id)
    }

    /// The request finished at fal: fetch its output, or decide what its failure means (`FailurePolicy.afterResult`).
    private func fetchResult(_ job: JobRecord, handle: FalRequestHandle, status: RequestStatus) async throws -> JobRecord? {
        let metrics = status.metrics.map { $0.canonicalString() }
        guard case .completed(let falError, let falErrorType) = status.state else { return nil }
        var fetches = 0
        while !Task.isCancelled {
            fetches += 1
            do {
                let output = try await environment.client.result(handle)
                guard let video = VideoOutput(result: output) else {
                    return try await fail(
                        job, StoredError(reason: "no_video", message: "fal's result has no video URL: \(output.canonicalString().prefix(300))"),
                        retryBy: .paidResubmit)
                }
                let result = FalResult(resultJSON: output.canonicalString(), videoURL: video.url.absoluteString, expectedBytes: video.fileSize, metrics: metrics)
                let next = try await store.recordResult(job.id, from: job.state, result: result)
                logger.info("finished at fal; downloading \(video.fileSize.map { "\($0) bytes" } ?? "the video")", metadata: metadata(next))
                return next
            } catch let error as FalError {
                let decision = policy.afterResult(
                    error, failedAtFal: falError != nil || falErrorType != nil, fetches: fetches, jobID: job.id, attempts: job.attempts,
                    cancelRequested: job.cancelRequested, now: Date())
                if case .askAgain(let delay) = decision {
                    guard await pause(delay) else { break }
                    continue
                }
                return try await resultFailed(job, error, decision, handle: handle, metrics: metrics)
            }
        }
        throw CancellationError()
    }

    /// Carries out a result failure's decision; each one transaction (a failure writes its manifest first).
    private func resultFailed(
        _ job: JobRecord, _ error: FalError, _ decision: FailurePolicy.Result, handle: FalRequestHandle, metrics: String?
    ) async throws -> JobRecord? {
        let stored = environment.stored(error)
        let store = self.store
        switch decision {
        case .askAgain, .cancelledByOperator:
            return nil
        case .failKeepingResult:
            return try await fail(job, stored.with(message: "fal finished request \(handle.requestID) but its result could not be fetched: \(error)"), retryBy: .result)
        case .failResultGone:
            return try await fail(job, stored.with(message: "fal no longer has the result of request \(handle.requestID): \(error)"), retryBy: .paidResubmit)
        case .newAttempt(let at):
            let next = try await store.recordFalFailure(job.id, from: job.state, failure: FalFailure(error: stored, retryAt: at, metrics: metrics))
            RunnerMetrics.retried(reason: error.reason)
            logger.warning("request failed at fal (\(error.reason)); submitting a new request (attempt \(job.lastAttempt + 1))", metadata: metadata(job))
            return next
        case .fail:
            return try await finish(job, .failed(stored, retryBy: .submit, closing: .failedAtFal)) { path in
                try await store.recordFalFailure(job.id, from: job.state, failure: FalFailure(error: stored, retryAt: nil, metrics: metrics, manifestPath: path))
            }
        }
    }
}

/// What the poller knows of where a request is, to aim its next poll (`PollSchedule`).
struct PollTracker {
    let jobID: Int64
    var polls = 0
    var pollsInPhase = 0
    var position: Int?
    var runningSince: ContinuousClock.Instant?
    /// When the job was last seen not running (the submit, or a poll that found it queued): it started between
    /// then and the poll that found it running, so the midpoint is the best guess of its start.
    var lastSeenQueued: ContinuousClock.Instant
    var inProgress: Bool
    var failures = 0

    init(job: JobRecord) {
        jobID = job.id
        inProgress = job.state == .inProgress
        runningSince = inProgress ? .now : nil
        lastSeenQueued = ContinuousClock.now - .seconds(max(0, Date().timeIntervalSince(job.submittedAt ?? Date())))
    }

    /// How long to wait before the next poll: backoff after failed polls, else the schedule.
    func delay(_ configuration: RunnerConfiguration, expected: Duration?) -> Duration {
        if failures > 0 { return min(configuration.retry.backoff(step: failures, cap: .seconds(60)), .seconds(60)) }
        return configuration.polling.delay(PollSchedule.Situation(
            jobID: jobID, polls: polls, inProgress: inProgress, pollsInPhase: pollsInPhase, queuePosition: position,
            runningFor: runningSince.map { .now - $0 }, expectedRunTime: expected))
    }

    mutating func polled() {
        polls += 1
        pollsInPhase += 1
    }

    mutating func seenQueued(at queuePosition: Int?) {
        position = queuePosition
        lastSeenQueued = .now
    }

    mutating func seenRunning() {
        let now = ContinuousClock.now
        runningSince = lastSeenQueued + (now - lastSeenQueued) / 2
        pollsInPhase = 0
        inProgress = true
    }
}
