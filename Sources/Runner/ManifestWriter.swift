import Foundation
import JobStore
import KlingCore
import KlingSpec
import Logging

/// How a job ends, as its manifest says before the store is told.
enum FinalOutcome: Sendable {
    case completed(DownloadedVideo)
    /// `closing` is how its open attempt ends (refused, failed at fal, lost), when it has one.
    case failed(StoredError, retryBy: RetryRoute, closing: AttemptOutcome? = nil)
    case cancelled(note: String)

    var state: JobState {
        switch self {
        case .completed: .completed
        case .failed: .failed
        case .cancelled: .cancelled
        }
    }
}

/// The one way a job reaches a final state, whatever the state: its video (if any) is on disk, then its manifest
/// is written atomically, then the store moves the job, naming the manifest.
///
/// A crash before the manifest leaves the job where it was, and the next start takes it up again. A crash after
/// the manifest and before the store leaves a manifest for an ending the store has not recorded: the next start
/// takes the job up again, and its manifest is written anew when it ends. So the store never calls a job final
/// without its manifest on disk.
struct ManifestWriter: Sendable {
    let store: any JobQueue
    let layout: OutputLayout
    let storageOrigin: String
    let crash: CrashPoints
    /// Where a contact sheet that could not be written is told.
    var logger: Logger? = nil

    /// Writes `job`'s manifest as it will be once `outcome` is committed, then commits it with `commit` (given the
    /// manifest's path). A manifest that cannot be written throws `LocalWriteError`, and nothing is committed.
    func finish(
        _ job: JobRecord, _ outcome: FinalOutcome, prices: PriceList, at now: Date = Date(),
        commit: @Sendable (_ manifestPath: String) async throws -> JobRecord
    ) async throws -> JobRecord {
        guard let batch = try await store.batch(job.batchId) else { throw StoreError.noSuchJob(job.id) }
        let path = layout.manifestPath(of: job, in: batch)
        let manifest = try await manifest(of: job, in: batch, ending: outcome, prices: prices, at: now)
        try AtomicFile.write(manifest.json.prettyData(), to: path, what: "manifest")
        crash.pass(.manifestWritten)
        // The batch's contact sheet, when this is its last job: before the store is told, like the manifest, so a
        // crash while writing it leaves the job to be finished (and the sheet written) again by the next start.
        var ending = job
        ending.state = outcome.state
        ending.finishedAt = now
        if case .completed(let video) = outcome { ending.videoPath = video.path }
        let sheetWritten = await writeContactSheet(batch, ending: ending)
        let ended = try await commit(path)
        RunnerMetrics.finished(outcome.state.label)
        // Two of its jobs ending at once each saw the other unfinished: the later commit writes it.
        if !sheetWritten { _ = await writeContactSheet(batch, ending: nil) }
        return ended
    }

    /// Writes the batch's contact sheet if every job has ended (counting `ending` as ended); a sheet that cannot be
    /// written costs no job anything, and is said in the log.
    private func writeContactSheet(_ batch: BatchRecord, ending: JobRecord?) async -> Bool {
        do {
            return try await ContactSheet.writeIfDone(batchID: batch.id, store: store, layout: layout, ending: ending) != nil
        } catch {
            logger?.warning("could not write the contact sheet of batch \(batch.name): \(error)")
            return false
        }
    }

    /// The price per second the job was accepted at (its estimate over its seconds), which its ledger rows carry:
    /// prices changed since (a reload, a command run with other settings) do not make the manifest disagree with them.
    static func acceptedPrice(of job: JobRecord, known: Bool) -> PriceList.Price {
        PriceList.Price(perSecond: USD(micros: job.estimatedCostMicros / Int64(max(1, job.durationSeconds))), known: known)
    }

    /// The manifest of `job` as it will be: final state, error, end time, and its last attempt closed.
    func manifest(of job: JobRecord, in batch: BatchRecord, ending outcome: FinalOutcome, prices: PriceList, at now: Date) async throws -> Manifest {
        var ending = job
        ending.state = outcome.state
        ending.finishedAt = now
        var attempts = try await store.attempts(of: job.id)
        var video: DownloadedVideo?
        switch outcome {
        case .completed(let done):
            video = done
            ending.lastError = nil
            ending.needsReview = done.needsReview
        case .failed(let error, _, let closing):
            ending.lastError = error.message
            if let closing, let last = attempts.indices.last, attempts[last].endedAt == nil || attempts[last].outcome == .accepted {
                attempts[last].outcome = closing
                attempts[last].endedAt = now
                attempts[last].errorReason = error.reason
                attempts[last].errorMessage = error.message
            }
        case .cancelled:
            if let last = attempts.indices.last, attempts[last].endedAt == nil { attempts[last].outcome = .cancelled }
        }
        let spec = try? JSONDecoder().decode(JobSpec.self, from: Data(job.specJson.utf8))
        var uploads: [String: String] = [:]
        for image in spec?.localImages ?? [] {
            if let url = try await store.cachedUpload(sha256: image.sha256, origin: storageOrigin, notBefore: .distantPast) { uploads[image.sha256] = url }
        }
        let logs = try await store.events(of: job.id).filter { $0.kind == .log }
        let spend = try await store.spend(ofJob: job.id)
        return Manifest(
            batch: batch, job: ending, spec: spec, attempts: attempts, logs: logs, uploads: uploads, video: video,
            price: Self.acceptedPrice(of: job, known: prices.price(for: job.endpoint).known), spend: spend, runner: .current)
    }
}
