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
            return try await fail(job, StoredError(reason: "spec", message: "the stored spec cannot be read: \(error)"))
        }
        var urls: [String: String] = [:]
        do {
            for image in spec.localImages { urls[image.sha256] = try await environment.uploads.url(for: image) }
        } catch let changed as ImageChanged {
            return try await fail(job, StoredError(reason: "image_changed", message: changed.description))
        } catch let error as FalError {
            return try await uploadFailed(job, error)
        }
        if let postponed = try await waitForGate(job) { return postponed }
        let input = spec.modelInput { source in
            if case .local(let image) = source { return urls[image.sha256] ?? image.written }
            return source.written
        }
        // Committed before anything is sent: a store that cannot take this row means nothing is sent.
        var submitOptions = configuration.submitOptions
        if let priority = spec.effectiveQueuePriority.flatMap(SubmitOptions.Priority.init(rawValue:)) { submitOptions.priority = priority }
        let options = submitOptions.recordJSON.canonicalString()
        switch try await store.beginSubmit(job.id, input: input.canonicalString(), origin: environment.origin, options: options, runner: environment.runner.id) {
        case .submit(let submitting):
            return submitting
        case .cancelRequested(let current):
            let store = self.store
            return try await finish(current, .cancelled(note: "cancelled by an operator before it was submitted; nothing was sent to fal")) { path in
                try await store.recordCancelled(current.id, from: .uploading, note: "cancelled by an operator before it was submitted", manifestPath: path)
            }
        }
    }

    /// An upload that fal refused or that could not reach it: fail, pause, or try later.
    private func uploadFailed(_ job: JobRecord, _ error: FalError) async throws -> JobRecord {
        switch error.disposition {
        case .permanent:
            return try await fail(job, environment.stored(error))
        case .pauseSubmissions:
            await environment.gate.pause(error.description)
            logger.critical("fal refused the key while uploading; submission is paused: \(error)", metadata: metadata(job))
            return try await store.postpone(job.id, from: .uploading, error: environment.stored(error), retryAt: Date().addingTimeInterval(60))
        case .retry, .reconcile:
            let at = configuration.retry.notReachedUntil(jobID: job.id, count: job.deferrals + 1, now: Date())
            logger.warning("upload failed, will retry: \(error)", metadata: metadata(job))
            return try await store.postpone(job.id, from: .uploading, error: environment.stored(error), retryAt: at)
        }
    }

    /// fal's Retry-After holds every submission, not just the one that met it. A refused key puts the job back
    /// in the queue; a pause of our own machine (store, disk) is waited out here, since it clears by itself.
    /// Returns the postponed job, or nil when the submit may go.
    private func waitForGate(_ job: JobRecord) async throws -> JobRecord? {
        while true {
            let (allowed, after) = await environment.gate.check()
            if allowed { return nil }
            if let after {
                guard await pause(.milliseconds(Int64(max(0, after.timeIntervalSinceNow) * 1000) + 1)) else { throw CancellationError() }
                continue
            }
            if let reason = await environment.gate.keyPausedReason {
                return try await store.postpone(
                    job.id, from: .uploading, error: StoredError(reason: "paused", message: "submission is paused: \(reason)"),
                    retryAt: Date().addingTimeInterval(60))
            }
            for cause in await environment.gate.pauseCauses where cause.isLocal {
                guard await environment.waitForLocal(cause) else { throw CancellationError() }
            }
        }
    }
}
