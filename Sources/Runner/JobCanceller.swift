import FalClient
import Foundation
import JobStore
import KlingCore
import Logging

/// Cancels a job wherever it is: locally when fal has nothing yet, at fal (PUT cancel) when it was submitted.
/// Used by `kling-batch cancel` and by a runner's poller that finds a cancel request on a job it holds. It needs
/// the queue, a client and the manifest writer, nothing of a runner.
public struct JobCanceller: Sendable {
    let store: any JobQueue
    let client: FalClient
    let manifests: ManifestWriter
    let prices: PriceList
    let logger: Logger

    /// For the CLI: everything from the queue, a client and the output tree (see `OutputLayout.forCommand`).
    public init(store: any JobQueue, client: FalClient, layout: OutputLayout, prices: PriceList, logger: Logger) {
        self.init(
            store: store, client: client,
            manifests: ManifestWriter(store: store, layout: layout, storageOrigin: client.endpoints.storageOrigin, crash: CrashPoints()),
            prices: prices, logger: logger)
    }

    init(store: any JobQueue, client: FalClient, manifests: ManifestWriter, prices: PriceList, logger: Logger) {
        self.store = store
        self.client = client
        self.manifests = manifests
        self.prices = prices
        self.logger = logger
    }

    /// For a runner's poller.
    init(environment: RunnerEnvironment) {
        self.init(
            store: environment.store, client: environment.client, manifests: environment.manifests,
            prices: environment.configuration.prices, logger: environment.logger)
    }

    /// What became of one cancel.
    public enum Outcome: Sendable, Equatable {
        /// Cancelled; `atFal` says whether fal was asked to cancel a request too.
        case cancelled(atFal: Bool, note: String)
        /// A runner holds it mid-step (uploading, submitting, reconciling); it will cancel it at its next step.
        case requested
        /// Nothing to cancel: the job is already final, or its video is being downloaded (fal finished, it is paid).
        case notCancellable(String)
    }

    /// Cancels `jobID`, retrying when a runner moves the job at the same moment.
    public func cancel(_ jobID: Int64) async throws -> Outcome {
        var asked = false
        for _ in 0..<10 {
            guard let job = try await store.job(jobID) else { return .notCancellable("no such job") }
            do {
                switch job.state {
                case .cancelled where asked:
                    // The runner polling it saw our wish first and cancelled it at fal itself: that is our cancel.
                    return .cancelled(atFal: true, note: "fal cancelled request \(job.requestId ?? "?") (through the runner holding it)")
                case .completed, .failed, .cancelled:
                    return .notCancellable("already \(job.state.label)")
                case .downloading:
                    return .notCancellable("fal already finished it; its video is being downloaded")
                case .queued, .held:
                    try await end(job, note: "cancelled by an operator before it was submitted")
                    return .cancelled(atFal: false, note: "cancelled before it was submitted")
                case .uploading, .submitting, .submitUnknown:
                    _ = try await store.requestCancel(jobID)
                    // The holder may have moved it on meanwhile; look again.
                    guard let again = try await store.job(jobID), again.state == job.state else { continue }
                    return .requested
                case .inQueue, .inProgress:
                    // The wish is recorded first: if this process stops half-way, whoever polls next finishes it.
                    _ = try await store.requestCancel(jobID)
                    asked = true
                    let note = try await cancelAtFal(job)
                    try await end(job, note: "cancelled by an operator: \(note)")
                    return .cancelled(atFal: true, note: note)
                }
            } catch let error as StoreError {
                if case .stale = error { continue }
                throw error
            }
        }
        return .requested
    }

    /// The cancelled ending, manifest first (see `ManifestWriter`).
    private func end(_ job: JobRecord, note: String) async throws {
        let store = self.store
        _ = try await manifests.finish(job, .cancelled(note: note), prices: prices) { path in
            try await store.recordCancelled(job.id, from: job.state, note: note, manifestPath: path)
        }
        logger.notice("\(note)", metadata: ["job": "\(job.id)"])
    }

    /// PUT cancel for the job's request; a request fal already finished is noted (its result is discarded).
    func cancelAtFal(_ job: JobRecord) async throws -> String {
        if RequestHandles.isForeign(job, origin: client.endpoints.queueOrigin) {
            // The key goes to the configured origin only; the request stays wherever it is.
            return "its request was sent to \(job.falOrigin ?? "?"), not to \(client.endpoints.queueOrigin); it was not asked to cancel there"
        }
        guard let handle = RequestHandles.handle(of: job, client: client, logger: logger) else { return "it had no request at fal" }
        switch try await client.cancel(handle) {
        case .requested: return "fal cancelled request \(handle.requestID)"
        case .alreadyCompleted: return "fal had already finished request \(handle.requestID); its result is discarded"
        }
    }
}
