import FalClient
import Foundation
import JobStore
import KlingCore
import KlingSpec
import Logging

/// Drives one job through its states until it is finished, waiting for a retry, or the runner stops.
///
/// Every step ends with one guarded transition, so whatever kills the process, the store says where to pick up.
/// A step that meets a job moved by someone else (an operator's cancel) stops without touching it.
struct JobExecutor: Sendable {
    let environment: RunnerEnvironment
    /// Called when the job no longer occupies a slot at fal (fal said it finished, or its video is being downloaded);
    /// the dispatcher counts it once per drive, and gives back any slot still held when the drive ends.
    let releaseFalSlot: @Sendable () -> Void

    var store: any JobQueue { environment.store }
    var logger: Logger { environment.logger }
    var configuration: RunnerConfiguration { environment.configuration }
    var policy: FailurePolicy { FailurePolicy(retry: configuration.retry, maxResultFetches: configuration.maxResultFetches) }

    /// What became of a drive, for the dispatcher's bookkeeping.
    enum Ending: Sendable, Equatable {
        /// The job left the executor's hands in a state it waits in (queued, held) or is final in.
        case left
        /// The job is still one the runner must drive (at fal, downloading), but this drive stopped on an error.
        case interrupted
        /// The runner is stopping.
        case stopped
    }

    /// Runs the job's steps in order.
    ///
    /// A store that cannot be written (a full disk, a read-only remount) never loses a step: the executor pauses
    /// submission, waits until the store works again, reads the job back and goes on from where the store says.
    /// Only a submit this executor itself committed (`mayPost`) is ever sent; a job found in `submitting` any
    /// other way may be at fal already and is reconciled instead.
    func drive(_ jobID: Int64) async -> Ending {
        var mayPost = false
        var current: JobRecord?
        while !Task.isCancelled {
            do {
                let loaded: JobRecord?
                if let current { loaded = current } else { loaded = try await store.job(jobID) }
                guard let job = loaded else { return .left }
                _ = await environment.names.name(of: job.batchId)
                if environment.isForeign(job) {
                    logger.warning("its request was sent to \(job.falOrigin ?? "?"), not to \(environment.origin); leaving it", metadata: metadata(job))
                    return .left
                }
                let next = try await step(job, mayPost: &mayPost)
                guard let next, next.state != job.state || next.updatedAt != job.updatedAt else { return .left }
                current = next
            } catch is CancellationError {
                // Stopping: the job stays in a state the next start resumes from.
                return .stopped
            } catch let error as StoreError where error.isTransient {
                await environment.pauseLocal(.store, error.description, metadata: ["job": "\(jobID)"])
                guard await environment.waitForLocal(.store) else { return .stopped }
                current = nil
                mayPost = false
            } catch let error as StoreError {
                if case .stale(let id, _, let actual) = error {
                    logger.info("job moved by someone else; leaving it", metadata: ["job": "\(id)", "state": "\(actual?.label ?? "gone")"])
                    return .left
                }
                logger.error("store refused a change: \(error)", metadata: ["job": "\(jobID)"])
                return .interrupted
            } catch {
                logger.error("job step failed: \(error)", metadata: ["job": "\(jobID)"])
                return .interrupted
            }
        }
        return .stopped
    }

    /// One step of the job's life, by its state.
    private func step(_ job: JobRecord, mayPost: inout Bool) async throws -> JobRecord? {
        switch job.state {
        case .uploading:
            let next = try await upload(job)
            mayPost = next?.state == .submitting
            return next
        case .submitting:
            guard mayPost else { return try await interruptedSubmit(job) }
            mayPost = false
            return try await submit(job)
        case .submitUnknown: return try await reconcile(job)
        case .inQueue, .inProgress: return try await poll(job)
        case .downloading:
            releaseFalSlot()
            let executor = self
            return try await LowPriority.run { try await executor.download(job) }
        case .queued, .held, .completed, .failed, .cancelled:
            return nil
        }
    }

    /// A job found in `submitting` that this executor did not just commit: its submit may have left, so it is
    /// looked for in fal's listing, never sent again.
    private func interruptedSubmit(_ job: JobRecord) async throws -> JobRecord {
        let unknown = try await durably(job) {
            try await store.recordUnknown(job.id, error: StoredError(reason: "interrupted", message: "a submit was interrupted before its outcome was recorded"))
        }
        logger.warning("found mid-submit; looking for it in fal's listing instead of sending it again", metadata: metadata(unknown))
        return unknown
    }

    /// Sleeps unless cancelled; true when the sleep ran its course.
    func pause(_ duration: Duration) async -> Bool {
        do {
            try await Task.sleep(for: max(duration, .zero))
            return true
        } catch {
            return false
        }
    }

    func metadata(_ job: JobRecord) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["job": "\(environment.names.cached(job.batchId))/\(job.name)"]
        if let request = job.requestId { metadata["request"] = "\(request)" }
        return metadata
    }
}
