import FalClient
import Foundation
import JobStore
import KlingCore

extension JobExecutor {
    /// submit_unknown: looks for the request in fal's listing; adopts it, or after the grace period submits again,
    /// but only once a look made after the grace period read the listing and did not find it: a listing that
    /// cannot be read proves nothing, and the job waits in submit_unknown rather than risk a second payment.
    func reconcile(_ job: JobRecord) async throws -> JobRecord? {
        guard let text = job.submittedInput, let input = try? JSONValue.parse(text), let endpoint = FalEndpointID(job.endpoint) else {
            return try await fail(job, StoredError(reason: "spec", message: "the job has no recorded input to look for"))
        }
        let started = job.submitStartedAt ?? job.updatedAt
        // Allow for clocks that disagree a little between us and fal.
        let since = started.addingTimeInterval(-120)
        let store = self.store
        while !Task.isCancelled {
            let lookStarted = Date()
            var looked = false
            do {
                if let found = try await environment.finder.find(endpoint: endpoint, input: input, since: since, isKnown: { try await store.isKnownRequestID($0) }) {
                    let handle = FalRequestHandle(requestID: found.requestID, endpoint: endpoint, queueBase: environment.client.endpoints.queue)
                    let request = StoredRequest(
                        id: handle.requestID, statusURL: handle.statusURL.absoluteString, responseURL: handle.responseURL.absoluteString,
                        cancelURL: handle.cancelURL.absoluteString)
                    let adopted = try await durably(job, holding: "fal's request \(found.requestID), found in the listing") {
                        try await store.adopt(job.id, request: request)
                    }
                    logger.notice("found the lost submit in fal's listing; adopted it instead of paying again", metadata: metadata(adopted))
                    return adopted
                }
                looked = true
            } catch let error as FalError {
                if error.disposition == .pauseSubmissions { await environment.gate.pause(error.description) }
                logger.warning("cannot read fal's request listing yet: \(error)", metadata: metadata(job))
            }
            let grace = configuration.reconcileGrace
            if looked && lookStarted.timeIntervalSince(started) >= grace.seconds {
                return try await giveUp(job, grace: grace)
            }
            let remaining = grace.seconds - Date().timeIntervalSince(started)
            let wait = remaining > 0 ? min(configuration.reconcileInterval, .milliseconds(Int64(max(0.05, remaining) * 1000))) : configuration.reconcileInterval
            guard await pause(wait) else { break }
        }
        throw CancellationError()
    }

    /// Nothing appeared within the grace period: submit again, flagged as a possible duplicate; or, when that was
    /// the last attempt, fail (manifest first). One transaction either way.
    private func giveUp(_ job: JobRecord, grace: Duration) async throws -> JobRecord {
        let store = self.store
        let maxAttempts = configuration.retry.maxAttempts
        let description = grace.formattedSeconds
        if job.attempts >= maxAttempts {
            let error = StoredError(reason: "attempts", message: "gave up after \(job.attempts) attempts (the last one not found in fal's listing within \(description))")
            return try await finish(job, .failed(error, retryBy: .submit, closing: .lost)) { path in
                try await store.giveUpReconciling(job.id, graceDescription: description, maxAttempts: maxAttempts, manifestPath: path, at: Date())
            }
        }
        let requeued = try await durably(job) {
            try await store.giveUpReconciling(job.id, graceDescription: description, maxAttempts: maxAttempts, manifestPath: nil, at: Date())
        }
        logger.warning("no matching request within \(description); submitting again, flagged as a possible duplicate", metadata: metadata(requeued))
        return requeued
    }
}
