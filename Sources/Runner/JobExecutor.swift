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
    /// Called once when the job no longer occupies a slot at fal (its video is being downloaded, or it left).
    let releaseFalSlot: @Sendable () -> Void

    var store: JobStore { environment.store }
    var logger: Logger { environment.logger }
    var configuration: RunnerConfiguration { environment.configuration }

    /// Runs the job's steps in order.
    func drive(_ jobID: Int64) async {
        defer { releaseFalSlot() }
        do {
            guard var job = try store.job(jobID) else { return }
            while !Task.isCancelled {
                let next: JobRecord?
                switch job.state {
                case .uploading: next = try await upload(job)
                case .submitting: next = try await submit(job)
                case .submitUnknown: next = try await reconcile(job)
                case .inQueue, .inProgress: next = try await poll(job)
                case .downloading:
                    releaseFalSlot()
                    next = try await download(job)
                case .queued, .held, .completed, .failed, .cancelled:
                    next = nil
                }
                guard let next, next.state != job.state || next.updatedAt != job.updatedAt else { break }
                job = next
            }
        } catch is CancellationError {
            // Stopping: the job stays in a state the next start resumes from.
        } catch let error as StoreError {
            if case .stale(let id, _, let actual) = error {
                logger.info("job moved by someone else; leaving it", metadata: ["job": "\(id)", "state": "\(actual?.label ?? "gone")"])
            } else {
                logger.error("store refused a change: \(error)", metadata: ["job": "\(jobID)"])
            }
        } catch {
            logger.error("job step failed: \(error)", metadata: ["job": "\(jobID)"])
        }
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
        var metadata: Logger.Metadata = ["job": "\(environment.displayName(job))"]
        if let request = job.requestId { metadata["request"] = "\(request)" }
        return metadata
    }

    /// Fails a job with `error` and writes its manifest.
    func fail(_ job: JobRecord, _ error: StoredError) throws -> JobRecord {
        let failed = try store.fail(job.id, from: job.state, error: error)
        logger.error("failed: \(error.message)", metadata: metadata(failed))
        try environment.writeManifest(job.id)
        return failed
    }

    /// After a transition to a final state by another path (recordRefused to failed, say), write the manifest.
    func finishIfFinal(_ job: JobRecord) throws -> JobRecord {
        if job.state.isTerminal {
            logger.error("failed: \(job.lastError ?? "unknown error")", metadata: metadata(job))
            try environment.writeManifest(job.id)
        }
        return job
    }
}
