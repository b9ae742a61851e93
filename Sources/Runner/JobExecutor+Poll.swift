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
        var polls = 0
        var pollsInPhase = 0
        var position: Int?
        var runningSince: ContinuousClock.Instant? = job.state == .inProgress ? .now : nil
        // When the job was last seen not running (the submit, or a poll that found it queued): it started
        // between then and the poll that found it running, so the midpoint is the best guess of its start.
        var lastSeenQueued = ContinuousClock.now - .seconds(max(0, Date().timeIntervalSince(job.submittedAt ?? Date())))
        var failures = 0
        while !Task.isCancelled {
            let situation = PollSchedule.Situation(
                jobID: job.id, polls: polls, inProgress: current.state == .inProgress, pollsInPhase: pollsInPhase,
                queuePosition: position, runningFor: runningSince.map { .now - $0 }, expectedRunTime: await environment.estimator.expected)
            let delay = failures > 0
                ? min(configuration.retry.backoff(step: failures, cap: .seconds(60)), .seconds(60))
                : configuration.polling.delay(situation)
            guard await pause(delay) else { break }
            let status: RequestStatus
            do {
                status = try await environment.client.status(handle, logs: true)
                failures = 0
            } catch let error as FalError {
                if error.kind == .notFound {
                    return try await fail(
                        current, StoredError(reason: "not_found", message: "fal no longer knows request \(handle.requestID)", httpStatus: 404),
                        retryBy: .paidResubmit)
                }
                if error.disposition == .pauseSubmissions { await environment.gate.pause(error.description) }
                failures += 1
                logger.warning("status call failed (\(failures) in a row): \(error)", metadata: metadata(current))
                continue
            }
            environment.crash.pass(.polled)
            polls += 1
            pollsInPhase += 1
            guard try store.notePoll(current.id, in: current.state, logs: status.logs.map(\.message)) else {
                // Moved by someone else, or an operator asked to cancel it: cancel at fal here, since this runner holds it.
                guard let fresh = try store.job(current.id) else { return nil }
                if fresh.cancelRequested && (fresh.state == .inQueue || fresh.state == .inProgress) {
                    _ = try await JobCanceller(environment: environment).cancel(fresh.id)
                    logger.notice("cancelled by an operator", metadata: metadata(fresh))
                    return try store.job(current.id)
                }
                return fresh
            }
            switch status.state {
            case .inQueue(let queuePosition):
                position = queuePosition
                lastSeenQueued = .now
            case .inProgress:
                if current.state == .inQueue {
                    current = try store.markStarted(current.id)
                    let now = ContinuousClock.now
                    runningSince = lastSeenQueued + (now - lastSeenQueued) / 2
                    pollsInPhase = 0
                    logger.info("running at fal", metadata: metadata(current))
                }
            case .completed:
                if let inference = status.metrics?["inference_time"]?.doubleValue { await environment.estimator.record(inference) }
                return try await finish(current, handle: handle, status: status)
            }
        }
        throw CancellationError()
    }

    /// The request finished at fal: fetch its output, or decide what its failure means.
    private func finish(_ job: JobRecord, handle: FalRequestHandle, status: RequestStatus) async throws -> JobRecord? {
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
                let next = try store.recordResult(
                    job.id, from: job.state, resultJSON: output.canonicalString(), videoURL: video.url.absoluteString,
                    expectedBytes: video.fileSize, metrics: metrics)
                logger.info("finished at fal; downloading \(video.fileSize.map { "\($0) bytes" } ?? "the video")", metadata: metadata(next))
                return next
            } catch let error as FalError {
                let failedAtFal = falError != nil || falErrorType != nil || error.kind.isModelRejection || error.httpStatus == 499
                if !failedAtFal {
                    // fal says it finished fine, so the result is paid for: ask again, never submit again.
                    if error.isRetryable && fetches < configuration.maxResultFetches {
                        guard await pause(configuration.retry.backoff(step: fetches, cap: .seconds(30))) else { break }
                        continue
                    }
                    let gone = error.kind == .notFound
                    return try await fail(
                        job, environment.stored(error).with(message: gone
                            ? "fal no longer has the result of request \(handle.requestID): \(error)"
                            : "fal finished request \(handle.requestID) but its result could not be fetched: \(error)"),
                        retryBy: gone ? .paidResubmit : .result)
                }
                return try await requestFailed(job, error, metrics: metrics)
            }
        }
        throw CancellationError()
    }

    /// The request failed at fal: a new attempt if the failure may pass, else the job fails.
    private func requestFailed(_ job: JobRecord, _ error: FalError, metrics: String?) async throws -> JobRecord? {
        let stored = environment.stored(error)
        if error.errorType == "client_cancelled" || error.httpStatus == 499 {
            if job.cancelRequested { return nil }
            return try await finishIfFinal(store.recordFalFailure(job.id, from: job.state, error: stored, retryAt: nil, metrics: metrics))
        }
        if error.isRetryable,
            case .retry(let at) = configuration.retry.decide(jobID: job.id, attempt: job.attempts, failure: .attemptFailed, now: Date())
        {
            let next = try store.recordFalFailure(job.id, from: job.state, error: stored, retryAt: at, metrics: metrics)
            RunnerMetrics.retried(reason: error.reason)
            logger.warning("request failed at fal (\(error.reason)); submitting a new request (attempt \(job.attempts + 1) of \(configuration.retry.maxAttempts))", metadata: metadata(job))
            return next
        }
        return try await finishIfFinal(store.recordFalFailure(job.id, from: job.state, error: stored, retryAt: nil, metrics: metrics))
    }

}

extension FalError.Kind {
    /// The model refused the input (a 422 detail array): the same input will be refused again.
    var isModelRejection: Bool {
        if case .validation = self { return true }
        return false
    }
}
