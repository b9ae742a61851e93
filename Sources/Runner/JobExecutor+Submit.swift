import FalClient
import Foundation
import JobStore
import KlingCore

extension JobExecutor {
    /// submitting: sends the submit exactly once and records what its outcome allows us to know.
    ///
    /// Every outcome is committed `durably`: an answer that arrived while the store cannot be written is held in
    /// memory, with submission paused, and committed as soon as it can be. A store error never leads to a resend.
    func submit(_ job: JobRecord) async throws -> JobRecord? {
        guard let text = job.submittedInput, let input = try? JSONValue.parse(text), let endpoint = FalEndpointID(job.endpoint) else {
            return try await fail(job, StoredError(reason: "spec", message: "the job has no valid input or endpoint to submit"))
        }
        let receipt: SubmitReceipt
        do {
            var current = configuration.submitOptions
            if environment.webhooks.isListening { current.webhookURL = configuration.webhookURL }
            receipt = try await sendSubmit(endpoint: endpoint, input: input, options: Self.options(recordedFor: job, else: current))
        } catch let error as FalError {
            return try await submitFailed(job, error)
        }
        environment.crash.pass(.submitAnswered)
        let handle = receipt.handle
        let request = StoredRequest(
            id: handle.requestID, statusURL: handle.statusURL.absoluteString, responseURL: handle.responseURL.absoluteString,
            cancelURL: handle.cancelURL.absoluteString)
        let accepted = try await durably(job, holding: "fal's request \(handle.requestID) (accepted, already paid for)") {
            try await store.recordAccepted(job.id, request: request)
        }
        environment.crash.pass(.submitCommitted)
        await environment.gate.submitted()
        RunnerMetrics.submitted()
        logger.info("submitted (attempt \(accepted.lastAttempt), queue position \(receipt.queuePosition.map(String.init) ?? "?"))", metadata: metadata(accepted))
        return accepted
    }

    /// Sends the submit in a task of its own, so that stopping the runner does not cut it off in the middle: whether
    /// fal already read the body cannot be known then, and it is far cheaper to hear fal's answer (it takes a few
    /// hundred milliseconds) than to reconcile a lost one. A stop waits `stopGrace` for the answer, then the submit
    /// is cut off, which makes its outcome unknown and reconciled; it never counts as "not sent".
    private func sendSubmit(endpoint: FalEndpointID, input: JSONValue, options: SubmitOptions) async throws -> SubmitReceipt {
        let client = environment.client
        let sending = Task { try await client.submit(endpoint: endpoint, input: input, options: options) }
        return try await withTaskCancellationHandler {
            try await sending.value
        } onCancel: {
            DispatchQueue.global().asyncAfter(deadline: .now() + Self.stopGrace.seconds) { sending.cancel() }
        }
    }

    /// The headers recorded with the body in `beginSubmit`, so that what is sent is what the manifest says; a job
    /// that began its submit before v5 recorded none and gets the current settings.
    static func options(recordedFor job: JobRecord, else current: SubmitOptions) -> SubmitOptions {
        guard let text = job.submitOptions, let recorded = try? JSONValue.parse(text) else { return current }
        return SubmitOptions(recordJSON: recorded, webhookURL: current.webhookURL)
    }

    /// How long a stopping runner waits for the answer to a submit already on its way.
    static let stopGrace: Duration = .seconds(5)

    /// What a failed submit means (`FailurePolicy.afterSubmit`), each outcome one durable commit.
    private func submitFailed(_ job: JobRecord, _ error: FalError) async throws -> JobRecord? {
        let stored = environment.stored(error)
        let store = self.store
        func refused(_ outcome: AttemptOutcome, counted: Bool, deferral: Bool = false, retryAt: Date) async throws -> JobRecord {
            try await durably(job, holding: "fal's refusal of the submit") {
                try await store.recordRefused(job.id, refusal: Refusal(outcome: outcome, counted: counted, deferral: deferral, error: stored, retryAt: retryAt))
            }
        }
        switch policy.afterSubmit(error, jobID: job.id, attempts: job.attempts, deferrals: job.deferrals, now: Date()) {
        case .reconcile:
            let unknown = try await durably(job, holding: "a submit of unknown outcome") { try await store.recordUnknown(job.id, error: stored) }
            logger.warning("submit outcome unknown (\(error.reason)); looking for it in fal's listing before anything else", metadata: metadata(unknown))
            return unknown
        case .keyRefused(let retryAt):
            await environment.gate.pause(error.description)
            logger.critical("fal refused the key; all submission is paused: \(error)", metadata: metadata(job))
            return try await refused(.refused, counted: false, retryAt: retryAt)
        case .rateLimited(let backOffUntil, let retryAt):
            await environment.gate.rateLimited(until: backOffUntil, atFal: try await store.atFalCount(), now: Date())
            logger.notice("rate limited by fal; waiting until \(retryAt) (not counted as an attempt)", metadata: metadata(job))
            RunnerMetrics.retried(reason: "rate_limited")
            return try await refused(.rateLimited, counted: false, retryAt: retryAt)
        case .notSent(let retryAt):
            let streak = await environment.gate.unreachable()
            logger.warning("could not reach fal (\(streak) in a row): \(error)", metadata: metadata(job))
            RunnerMetrics.retried(reason: "not_sent")
            return try await refused(.notSent, counted: false, deferral: true, retryAt: retryAt)
        case .retry(let at):
            logger.warning("submit refused (\(error.reason)); retrying: \(error)", metadata: metadata(job))
            RunnerMetrics.retried(reason: error.reason)
            return try await refused(.refused, counted: true, retryAt: at)
        case .giveUp:
            return try await finish(job, .failed(stored, retryBy: .submit, closing: .refused)) { path in
                try await store.recordRefused(job.id, refusal: Refusal(outcome: .refused, counted: true, error: stored, retryAt: nil, manifestPath: path))
            }
        }
    }
}
