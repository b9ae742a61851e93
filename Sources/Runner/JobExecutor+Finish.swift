import Foundation
import JobStore
import KlingCore

extension JobExecutor {
    /// Commits `write` whatever it takes: while the store cannot be written, submission is paused and the outcome
    /// is held here, in memory, and committed the moment the store works again. Used for what must never be lost
    /// (fal's answer to a submit): throws only `CancellationError` (stopping; the next start reconciles) or a
    /// store error that waiting cannot fix.
    func durably(_ job: JobRecord, holding what: @autoclosure () -> String = "", _ write: () async throws -> JobRecord) async throws -> JobRecord {
        var announced = false
        while true {
            do {
                let written = try await write()
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

    /// Ends the job as `outcome` through the one commit protocol (manifest, then store: see `ManifestWriter`),
    /// waiting with submission paused while the output folder cannot take the manifest, and committing durably:
    /// an ending decided (a refusal, say) is never lost to a store that cannot be written.
    func finish(_ job: JobRecord, _ outcome: FinalOutcome, commit: @escaping @Sendable (_ manifestPath: String) async throws -> JobRecord) async throws -> JobRecord {
        while true {
            do {
                let ended = try await environment.manifests.finish(job, outcome, prices: configuration.prices) { path in
                    try await durably(job, holding: "the job's ending") { try await commit(path) }
                }
                switch outcome {
                case .failed(let error, _, _): logger.error("failed: \(error.message)", metadata: metadata(ended))
                case .cancelled(let note): logger.notice("\(note)", metadata: metadata(ended))
                case .completed: break
                }
                return ended
            } catch let error as LocalWriteError where error.isWaitable {
                await environment.pauseOutput(error, error.description, metadata: metadata(job))
                guard await environment.waitForLocal(.output) else { throw CancellationError() }
            }
        }
    }

    /// Fails the job with `error`, noting what `retry` must do to finish it.
    func fail(_ job: JobRecord, _ error: StoredError, retryBy: RetryRoute = .submit) async throws -> JobRecord {
        let store = self.store
        return try await finish(job, .failed(error, retryBy: retryBy, closing: job.state.isAtFal ? .failedAtFal : nil)) { path in
            try await store.fail(job.id, from: job.state, error: error, retryBy: retryBy, manifestPath: path)
        }
    }
}
