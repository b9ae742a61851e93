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
    ///
    /// A store that cannot be written (a full disk, a read-only remount) never loses a step: the executor pauses
    /// submission, waits until the store works again, reads the job back and goes on from where the store says.
    /// Only a submit this executor itself committed (`mayPost`) is ever sent; a job found in `submitting` any
    /// other way may be at fal already and is reconciled instead.
    func drive(_ jobID: Int64) async {
        defer { releaseFalSlot() }
        var mayPost = false
        var current: JobRecord?
        while !Task.isCancelled {
            do {
                guard let job = try current ?? store.job(jobID) else { return }
                if environment.isForeign(job) {
                    logger.warning("its request was sent to \(job.falOrigin ?? "?"), not to \(environment.origin); leaving it", metadata: metadata(job))
                    return
                }
                let next = try await step(job, mayPost: &mayPost)
                guard let next, next.state != job.state || next.updatedAt != job.updatedAt else { return }
                current = next
            } catch is CancellationError {
                // Stopping: the job stays in a state the next start resumes from.
                return
            } catch let error as StoreError where error.isTransient {
                await environment.pauseLocal(.store, error.description, metadata: ["job": "\(jobID)"])
                guard await environment.waitForLocal(.store) else { return }
                current = nil
                mayPost = false
            } catch let error as StoreError {
                if case .stale(let id, _, let actual) = error {
                    logger.info("job moved by someone else; leaving it", metadata: ["job": "\(id)", "state": "\(actual?.label ?? "gone")"])
                } else {
                    logger.error("store refused a change: \(error)", metadata: ["job": "\(jobID)"])
                }
                return
            } catch {
                logger.error("job step failed: \(error)", metadata: ["job": "\(jobID)"])
                return
            }
        }
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
            return try await download(job)
        case .queued, .held, .completed, .failed, .cancelled:
            return nil
        }
    }

    /// A job found in `submitting` that this executor did not just commit: its submit may have left, so it is
    /// looked for in fal's listing, never sent again.
    private func interruptedSubmit(_ job: JobRecord) async throws -> JobRecord {
        let unknown = try await durably(job) {
            try store.recordUnknown(job.id, error: StoredError(reason: "interrupted", message: "a submit was interrupted before its outcome was recorded"))
        }
        logger.warning("found mid-submit; looking for it in fal's listing instead of sending it again", metadata: metadata(unknown))
        return unknown
    }

    /// Commits `write` whatever it takes: while the store cannot be written, submission is paused and the outcome
    /// is held here, in memory, and committed the moment the store works again. Used for what must never be lost
    /// (fal's answer to a submit): throws only `CancellationError` (stopping; the next start reconciles) or a
    /// store error that waiting cannot fix.
    func durably(_ job: JobRecord, holding what: @autoclosure () -> String = "", _ write: () throws -> JobRecord) async throws -> JobRecord {
        var announced = false
        while true {
            do {
                let written = try write()
                if announced { await environment.clearLocal(.store) }
                return written
            } catch let error as StoreError where error.isTransient {
                if !announced {
                    announced = true
                    let held = what()
                    logger.critical(
                        "\(error)\(held.isEmpty ? "" : "; holding \(held) in memory until it can be recorded"); nothing is submitted meanwhile",
                        metadata: metadata(job))
                }
                await environment.pauseLocal(.store, error.description)
                guard await environment.waitForLocal(.store) else {
                    let held = what()
                    if !held.isEmpty {
                        logger.notice("stopping with \(held) not recorded; the next start finds it in fal's listing instead of paying again",
                                      metadata: metadata(job))
                    }
                    throw CancellationError()
                }
            }
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

    /// Fails a job with `error`, noting what `retry` must do to finish it, and writes its manifest.
    func fail(_ job: JobRecord, _ error: StoredError, retryBy: RetryRoute = .submit) async throws -> JobRecord {
        let failed = try store.fail(job.id, from: job.state, error: error, retryBy: retryBy)
        logger.error("failed: \(error.message)", metadata: metadata(failed))
        try await writeFinalManifest(failed)
        return failed
    }

    /// After a transition to a final state by another path (recordRefused to failed, say), write the manifest.
    func finishIfFinal(_ job: JobRecord) async throws -> JobRecord {
        if job.state.isTerminal {
            if job.state == .failed { logger.error("failed: \(job.lastError ?? "unknown error")", metadata: metadata(job)) }
            try await writeFinalManifest(job)
        }
        return job
    }

    /// Writes a final job's manifest, waiting (with submission paused) while the output folder cannot take it.
    func writeFinalManifest(_ job: JobRecord) async throws {
        while true {
            do {
                try environment.writeManifest(job.id)
                return
            } catch let error as LocalWriteError where error.isWaitable {
                await environment.pauseOutput(error, error.description, metadata: metadata(job))
                guard await environment.waitForLocal(.output) else { throw CancellationError() }
            }
        }
    }
}
