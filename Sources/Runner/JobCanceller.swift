import FalClient
import Foundation
import JobStore

/// Cancels a job wherever it is: locally when fal has nothing yet, at fal (PUT cancel) when it was submitted.
/// Used by `kling-batch cancel` and by a runner's poller that finds a cancel request on a job it holds.
public struct JobCanceller: Sendable {
    public let environment: RunnerEnvironment

    public init(environment: RunnerEnvironment) { self.environment = environment }

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
        let store = environment.store
        for _ in 0..<10 {
            guard let job = try store.job(jobID) else { return .notCancellable("no such job") }
            do {
                switch job.state {
                case .completed, .failed, .cancelled:
                    return .notCancellable("already \(job.state.label)")
                case .downloading:
                    return .notCancellable("fal already finished it; its video is being downloaded")
                case .queued, .held:
                    try store.recordCancelled(jobID, from: job.state, note: "cancelled by an operator before it was submitted")
                    try environment.writeManifest(jobID)
                    return .cancelled(atFal: false, note: "cancelled before it was submitted")
                case .uploading, .submitting, .submitUnknown:
                    try store.requestCancel(jobID)
                    // The holder may have moved it on meanwhile; look again.
                    guard let again = try store.job(jobID), again.state == job.state else { continue }
                    return .requested
                case .inQueue, .inProgress:
                    let note = try await cancelAtFal(job)
                    try store.recordCancelled(jobID, from: job.state, note: "cancelled by an operator: \(note)")
                    try environment.writeManifest(jobID)
                    return .cancelled(atFal: true, note: note)
                }
            } catch let error as StoreError {
                if case .stale = error { continue }
                throw error
            }
        }
        return .requested
    }

    /// PUT cancel for the job's request; a request fal already finished is noted (its result is discarded).
    func cancelAtFal(_ job: JobRecord) async throws -> String {
        if environment.isForeign(job) {
            // The key goes to the configured origin only; the request stays wherever it is.
            return "its request was sent to \(job.falOrigin ?? "?"), not to \(environment.origin); it was not asked to cancel there"
        }
        guard let handle = environment.handle(of: job) else { return "it had no request at fal" }
        switch try await environment.client.cancel(handle) {
        case .requested: return "fal cancelled request \(handle.requestID)"
        case .alreadyCompleted: return "fal had already finished request \(handle.requestID); its result is discarded"
        }
    }
}
