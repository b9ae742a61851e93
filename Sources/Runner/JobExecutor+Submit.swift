import FalClient
import Foundation
import JobStore
import KlingCore
import KlingSpec

extension JobExecutor {
    /// uploading: puts each local image in fal storage (once per content), waits for the gate, then commits the
    /// exact body about to be sent (→ submitting), or honours an operator's cancel (→ cancelled).
    func upload(_ job: JobRecord) async throws -> JobRecord? {
        let spec: JobSpec
        do {
            spec = try JSONDecoder().decode(JobSpec.self, from: Data(job.specJson.utf8))
        } catch {
            return try fail(job, StoredError(reason: "spec", message: "the stored spec cannot be read: \(error)"))
        }
        var urls: [String: String] = [:]
        do {
            for image in spec.localImages { urls[image.sha256] = try await environment.uploads.url(for: image) }
        } catch let changed as ImageChanged {
            return try fail(job, StoredError(reason: "image_changed", message: changed.description))
        } catch let error as FalError {
            switch error.disposition {
            case .permanent:
                return try fail(job, environment.stored(error))
            case .pauseSubmissions:
                await environment.gate.pause(error.description)
                logger.critical("fal refused the key while uploading; submission is paused: \(error)", metadata: metadata(job))
                return try store.postpone(job.id, from: .uploading, error: environment.stored(error), retryAt: Date().addingTimeInterval(60))
            case .retry, .reconcile:
                let count = job.deferrals + 1
                guard case .retry(let at) = configuration.retry.decide(jobID: job.id, attempt: job.attempts, failure: .notReached(count: count), now: Date()) else {
                    return try fail(job, environment.stored(error))
                }
                logger.warning("upload failed, will retry: \(error)", metadata: metadata(job))
                return try store.postpone(job.id, from: .uploading, error: environment.stored(error), retryAt: at)
            }
        }
        // fal's Retry-After holds every submission, not just the one that met it; a paused gate puts the job back.
        while true {
            let (allowed, after) = await environment.gate.check()
            if allowed { break }
            guard let after else {
                let reason = await environment.gate.pausedReason ?? "paused"
                return try store.postpone(
                    job.id, from: .uploading, error: StoredError(reason: "paused", message: "submission is paused: \(reason)"),
                    retryAt: Date().addingTimeInterval(60))
            }
            guard await pause(.milliseconds(Int64(max(0, after.timeIntervalSinceNow) * 1000) + 1)) else { throw CancellationError() }
        }
        let input = spec.modelInput { source in
            if case .local(let image) = source { return urls[image.sha256] ?? image.written }
            return source.written
        }
        let next = try store.beginSubmit(job.id, input: input.canonicalString())
        if next.state == .cancelled {
            logger.notice("cancelled by an operator before it was submitted; nothing was sent to fal", metadata: metadata(next))
            try environment.writeManifest(job.id)
        }
        return next
    }

    /// submitting: sends the submit exactly once and records what its outcome allows us to know.
    func submit(_ job: JobRecord) async throws -> JobRecord? {
        guard let text = job.submittedInput, let input = try? JSONValue.parse(text), let endpoint = FalEndpointID(job.endpoint) else {
            return try fail(job, StoredError(reason: "spec", message: "the job has no valid input or endpoint to submit"))
        }
        let receipt: SubmitReceipt
        do {
            receipt = try await environment.client.submit(endpoint: endpoint, input: input, options: configuration.submitOptions)
        } catch is CancellationError {
            // Cancelled before the body left: nothing reached fal.
            return try store.recordRefused(
                job.id, outcome: .notSent, counted: false, deferral: false,
                error: StoredError(reason: "stopped", message: "the runner stopped before the submit was sent"), retryAt: Date())
        } catch let error as FalError {
            return try await submitFailed(job, error)
        }
        environment.crash.pass(.submitAnswered)
        let handle = receipt.handle
        let accepted = try store.recordAccepted(
            job.id,
            request: StoredRequest(id: handle.requestID, statusURL: handle.statusURL.absoluteString,
                                   responseURL: handle.responseURL.absoluteString, cancelURL: handle.cancelURL.absoluteString))
        environment.crash.pass(.submitCommitted)
        await environment.gate.submitted()
        RunnerMetrics.submitted()
        logger.info("submitted (attempt \(accepted.attempts), queue position \(receipt.queuePosition.map(String.init) ?? "?"))", metadata: metadata(accepted))
        return accepted
    }

    /// What a failed submit means: reconcile, wait, retry, pause, or give up.
    private func submitFailed(_ job: JobRecord, _ error: FalError) async throws -> JobRecord? {
        let stored = environment.stored(error)
        let now = Date()
        let policy = configuration.retry
        switch (error.disposition, error.kind) {
        case (.reconcile, _):
            let unknown = try store.recordUnknown(job.id, error: stored)
            logger.warning("submit outcome unknown (\(error.reason)); looking for it in fal's listing before anything else", metadata: metadata(unknown))
            return unknown
        case (.pauseSubmissions, _):
            await environment.gate.pause(error.description)
            logger.critical("fal refused the key; all submission is paused: \(error)", metadata: metadata(job))
            return try store.recordRefused(job.id, outcome: .refused, counted: false, deferral: false, error: stored, retryAt: now.addingTimeInterval(60))
        case (.retry(let retryAfter), .rateLimited):
            guard case .retry(let at) = policy.decide(jobID: job.id, attempt: job.attempts, failure: .rateLimited(retryAfter: retryAfter), now: now) else {
                return nil
            }
            let counts = try store.counts()
            let atFal = JobState.atFal.reduce(0) { $0 + counts[$1, default: 0] }
            await environment.gate.rateLimited(until: now + (retryAfter ?? policy.rateLimitDefault), atFal: atFal, now: now)
            logger.notice("rate limited by fal; waiting until \(at) (not counted as an attempt)", metadata: metadata(job))
            RunnerMetrics.retried(reason: "rate_limited")
            return try store.recordRefused(job.id, outcome: .rateLimited, counted: false, deferral: false, error: stored, retryAt: at)
        case (.retry, .transport):
            // The body never left: nothing can have been created or billed.
            let streak = await environment.gate.unreachable()
            guard case .retry(let at) = policy.decide(jobID: job.id, attempt: job.attempts, failure: .notReached(count: job.deferrals + 1), now: now) else {
                return nil
            }
            logger.warning("could not reach fal (\(streak) in a row): \(error)", metadata: metadata(job))
            RunnerMetrics.retried(reason: "not_sent")
            return try store.recordRefused(job.id, outcome: .notSent, counted: false, deferral: true, error: stored, retryAt: at)
        case (.retry, _):
            switch policy.decide(jobID: job.id, attempt: job.attempts + 1, failure: .attemptFailed, now: now) {
            case .retry(let at):
                logger.warning("submit refused (\(error.reason)); retrying: \(error)", metadata: metadata(job))
                RunnerMetrics.retried(reason: error.reason)
                return try store.recordRefused(job.id, outcome: .refused, counted: true, deferral: false, error: stored, retryAt: at)
            case .giveUp:
                return try finishIfFinal(store.recordRefused(job.id, outcome: .refused, counted: true, deferral: false, error: stored, retryAt: nil))
            }
        case (.permanent, _):
            return try finishIfFinal(store.recordRefused(job.id, outcome: .refused, counted: true, deferral: false, error: stored, retryAt: nil))
        }
    }

    /// submit_unknown: looks for the request in fal's listing; adopts it, or after the grace period submits again.
    func reconcile(_ job: JobRecord) async throws -> JobRecord? {
        guard let text = job.submittedInput, let input = try? JSONValue.parse(text), let endpoint = FalEndpointID(job.endpoint) else {
            return try fail(job, StoredError(reason: "spec", message: "the job has no recorded input to look for"))
        }
        let started = job.submitStartedAt ?? job.updatedAt
        // Allow for clocks that disagree a little between us and fal.
        let since = started.addingTimeInterval(-120)
        while !Task.isCancelled {
            do {
                let store = self.store
                if let found = try await environment.finder.find(endpoint: endpoint, input: input, since: since, isKnown: { try store.isKnownRequestID($0) }) {
                    let handle = FalRequestHandle(requestID: found.requestID, endpoint: endpoint, queueBase: environment.client.endpoints.queue)
                    let adopted = try store.adopt(
                        job.id,
                        request: StoredRequest(id: handle.requestID, statusURL: handle.statusURL.absoluteString,
                                               responseURL: handle.responseURL.absoluteString, cancelURL: handle.cancelURL.absoluteString))
                    logger.notice("found the lost submit in fal's listing; adopted it instead of paying again", metadata: metadata(adopted))
                    return adopted
                }
            } catch let error as FalError {
                if error.disposition == .pauseSubmissions { await environment.gate.pause(error.description) }
                logger.warning("cannot read fal's request listing yet: \(error)", metadata: metadata(job))
            }
            let grace = configuration.reconcileGrace
            if Date().timeIntervalSince(started) >= grace.seconds {
                let requeued = try store.giveUpReconciling(job.id, graceDescription: grace.formattedSeconds)
                logger.warning("no matching request within \(grace.formattedSeconds); submitting again, flagged as a possible duplicate", metadata: metadata(requeued))
                if requeued.attempts >= configuration.retry.maxAttempts {
                    return try fail(requeued, StoredError(reason: "attempts", message: "gave up after \(requeued.attempts) attempts"))
                }
                return requeued
            }
            let remaining = grace.seconds - Date().timeIntervalSince(started)
            guard await pause(min(configuration.reconcileInterval, .milliseconds(Int64(max(0.05, remaining) * 1000)))) else { break }
        }
        throw CancellationError()
    }
}
