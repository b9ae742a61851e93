import FalClient
import Foundation
import JobStore
import KlingCore

extension JobExecutor {
    /// in_queue / in_progress: follows fal's status stream (or, while it is down, polls on an adaptive schedule)
    /// until the request finishes, then fetches its result (→ downloading) or handles its failure. A webhook for
    /// the request (when the daemon takes them) makes it look at once.
    func poll(_ job: JobRecord) async throws -> JobRecord? {
        guard let handle = environment.handle(of: job) else {
            return try await fail(job, StoredError(reason: "request", message: "the job is at fal but has no request URLs"))
        }
        var current = job
        var tracker = PollTracker(job: job)
        let feed = configuration.statusStream ? StatusFeed(client: environment.client, handle: handle) : nil
        defer { feed?.close(failed: false) }
        let webhooks = environment.webhooks
        let bell = webhooks.isListening ? webhooks.bell(for: handle.requestID) : nil
        defer { if bell != nil { webhooks.leave(handle.requestID) } }
        while !Task.isCancelled {
            let step: StatusStep
            if let feed { step = await streamed(feed, tracker: tracker, job: current, bell: bell) } else { step = await scheduledPoll(tracker, bell: bell) }
            let status: RequestStatus
            switch step {
            case .stop:
                throw CancellationError()
            case .status(let streamed):
                environment.crash.pass(.polled)
                status = streamed
            case .poll(let woken):
                switch try await pollOnce(current, handle: handle, tracker: &tracker) {
                case .status(let polled): status = polled
                case .failedCall: continue
                case .ended(let ended): return ended
                }
                // Found ended by a poll of its own: if its webhook does not follow soon, webhooks are being lost.
                if !woken, bell != nil, case .completed = status.state { webhooks.polledEnded(handle.requestID) }
            }
            // fal counts a request against the account's concurrency only until it finishes: its slot is free now, so
            // the next submit goes while this result and video are fetched.
            if case .completed = status.state { releaseFalSlot() }
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
                // Past fal: its result and video go apart from the work that keeps fal busy (`LowPriority`).
                let (executor, finished) = (self, current)
                return try await LowPriority.run { try await executor.fetchResult(finished, handle: handle, status: status) }
            }
        }
        throw CancellationError()
    }

    /// What the loop does next: handle a status the stream sent, poll (`woken`: because a webhook came), or stop.
    enum StatusStep {
        case status(RequestStatus)
        case poll(woken: Bool)
        case stop
    }

    /// Without a stream: wait for the schedule's next poll, or a webhook. While webhooks are relied on, the schedule
    /// is the slow one (`poll_max_in_queue`/`_in_progress`): a safety net, not the way a job learns it ended.
    private func scheduledPoll(_ tracker: PollTracker, bell: Doorbell?) async -> StatusStep {
        let relaxed = bell != nil && environment.webhooks.isRelied
        return await wait(tracker.delay(configuration, expected: await environment.estimator.expected, relaxed: relaxed), bell: bell)
    }

    /// Sleeps `duration`, or until the webhook bell rings: the poll that follows, or stop when cancelled.
    private func wait(_ duration: Duration, bell: Doorbell?) async -> StatusStep {
        guard let bell else { return await pause(duration) ? .poll(woken: false) : .stop }
        let rung = await bell.wait(until: .now + max(duration, .zero))
        return Task.isCancelled ? .stop : .poll(woken: rung)
    }

    /// With a stream: its next status; when it is closed, the next poll or its reopening, whichever is first; when
    /// it breaks or stays silent past what the run times make plausible, a poll at once.
    private func streamed(_ feed: StatusFeed, tracker: PollTracker, job: JobRecord, bell: Doorbell?) async -> StatusStep {
        let expected = await environment.estimator.expected
        if !feed.isOpen {
            let pollAt = ContinuousClock.now + tracker.delay(configuration, expected: expected)
            guard feed.reopenAt <= pollAt else { return await wait(pollAt - .now, bell: bell) }
            guard await pause(feed.reopenAt - .now) else { return .stop }
            feed.open()
        }
        let silence = max(configuration.streamSilence, (expected ?? .zero) * 1.5)
        let (event, webhook) = await nextEvent(feed, until: .now + silence, bell: bell)
        if webhook {
            logger.debug("webhook came before the status stream said so; polling now", metadata: metadata(job))
            return Task.isCancelled ? .stop : .poll(woken: true)
        }
        switch event {
        case .status(let status):
            return .status(status)
        case .ended(let why):
            logger.info("status stream: \(why); polling until it reopens", metadata: metadata(job))
            return Task.isCancelled ? .stop : .poll(woken: false)
        case nil:
            logger.info("status stream silent for \(silence.formattedSeconds); polling until it reopens", metadata: metadata(job))
            return Task.isCancelled ? .stop : .poll(woken: false)
        }
    }

    /// The stream's next event, unless the webhook bell rings first (then no event, and true).
    private func nextEvent(_ feed: StatusFeed, until deadline: ContinuousClock.Instant, bell: Doorbell?) async -> (StatusFeed.Event?, Bool) {
        guard let bell else { return (await feed.next(until: deadline), false) }
        return await withTaskGroup(of: (StatusFeed.Event?, Bool)?.self) { group in
            group.addTask { (await feed.next(until: deadline), false) }
            group.addTask { await bell.wait(until: deadline) ? (nil, true) : nil }
            var first: (StatusFeed.Event?, Bool)?
            while let result = await group.next() {
                if let result {
                    first = result
                    break
                }
            }
            group.cancelAll()
            // A webhook that came in the same instant as the stream's event is kept for the next wait.
            if first?.1 == false { for await rest in group where rest?.1 == true { bell.ring() } }
            return first ?? (nil, false)
        }
    }

    /// One status call's outcome.
    enum PollAnswer {
        case status(RequestStatus)
        /// The call failed: wait (with backoff) and try again.
        case failedCall
        /// fal no longer knows the request: the job has been failed.
        case ended(JobRecord?)
    }

    /// One status call.
    private func pollOnce(_ current: JobRecord, handle: FalRequestHandle, tracker: inout PollTracker) async throws -> PollAnswer {
        let status: RequestStatus
        do {
            status = try await environment.client.status(handle, logs: true)
            tracker.failures = 0
        } catch let error as FalError {
            if error.kind == .notFound {
                return .ended(try await fail(
                    current, StoredError(reason: "not_found", message: "fal no longer knows request \(handle.requestID)", httpStatus: 404),
                    retryBy: .paidResubmit))
            }
            if error.disposition == .pauseSubmissions { await environment.gate.pause(error.description) }
            tracker.failures += 1
            logger.warning("status call failed (\(tracker.failures) in a row): \(error)", metadata: metadata(current))
            return .failedCall
        }
        environment.crash.pass(.polled)
        tracker.polled()
        return .status(status)
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

    /// How long to wait before the next poll: backoff after failed polls, else the schedule (its slowest pace when
    /// `relaxed`, as webhooks tell the end).
    func delay(_ configuration: RunnerConfiguration, expected: Duration?, relaxed: Bool = false) -> Duration {
        if failures > 0 { return min(configuration.retry.backoff(step: failures, cap: .seconds(60)), .seconds(60)) }
        if relaxed { return inProgress ? configuration.polling.maxInProgress : configuration.polling.maxInQueue }
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
