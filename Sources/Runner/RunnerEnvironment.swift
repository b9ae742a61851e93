import FalClient
import Foundation
import JobStore
import KlingCore
import KlingSpec
import Logging
import Synchronization

/// What every part of a runner shares: the store, the client, the limits and the clocks.
public final class RunnerEnvironment: Sendable {
    public let store: JobStore
    public let client: FalClient
    public let layout: OutputLayout
    public let gate: SubmissionGate
    public let doorbell: Doorbell
    public let logger: Logger
    let uploads: UploadCoordinator
    let finder: RequestFinder
    let downloads: AsyncSemaphore
    let estimator = RunTimeEstimator()
    let crash: CrashPoints
    private let settings: Mutex<RunnerConfiguration>
    /// The folder whose write failed last: a probe there tells whether that write would work now (the output
    /// root may well be writable while a day folder on another mount is not).
    private let failedOutput = Mutex<(folder: String, bytes: Int64)?>(nil)
    /// Bytes of videos being downloaded that are not on disk yet, so downloads start only while they all fit.
    private let outputReserved = Mutex<Int64>(0)

    public init(configuration: RunnerConfiguration, store: JobStore, client: FalClient, logger: Logger, crash: CrashPoints = CrashPoints()) {
        self.store = store
        self.client = client
        self.logger = logger
        self.crash = crash
        layout = OutputLayout(root: configuration.outputDirectory)
        doorbell = Doorbell()
        gate = SubmissionGate(limit: configuration.concurrency, recoveryInterval: configuration.concurrencyRecovery.seconds, doorbell: doorbell)
        uploads = UploadCoordinator(
            store: store, client: client, permits: AsyncSemaphore(permits: configuration.uploadConcurrency), reuse: configuration.uploadReuse,
            origin: client.endpoints.storageOrigin)
        finder = RequestFinder(client: client)
        downloads = AsyncSemaphore(permits: configuration.downloadConcurrency)
        settings = Mutex(configuration)
    }

    /// The settings in force now.
    public var configuration: RunnerConfiguration { settings.withLock { $0 } }

    /// Applies reloadable settings (concurrency, polling, retries, budget) without dropping work.
    public func reload(_ change: (inout RunnerConfiguration) -> Void) async {
        let updated = settings.withLock { value -> RunnerConfiguration in
            change(&value)
            return value
        }
        await gate.setConfiguredLimit(updated.concurrency)
        doorbell.ring()
    }

    /// `batch/job` for log lines and messages.
    public func displayName(_ job: JobRecord) -> String {
        let batch = (try? store.batch(job.batchId))?.name ?? "batch\(job.batchId)"
        return "\(batch)/\(job.name)"
    }

    /// The origin this runner sends requests to; jobs whose request went elsewhere are not touched.
    public var origin: String { client.endpoints.queueOrigin }

    /// Whether the job needs the key at another origin than this runner's (an emulator that is gone, say): its
    /// request is there. A download needs no key, so a job in `downloading` is never foreign.
    public func isForeign(_ job: JobRecord) -> Bool {
        guard job.state != .downloading, job.state != .queued || job.resume == .result else { return false }
        return job.falOrigin.map { $0 != origin } ?? false
    }

    /// The request's URLs as stored, each on the configured queue origin (a URL elsewhere is rebuilt from the
    /// request id, and the mismatch logged: following it would send the key there); nil before a submit.
    func handle(of job: JobRecord) -> FalRequestHandle? {
        guard let id = job.requestId, let endpoint = FalEndpointID(job.endpoint) else { return nil }
        guard let status = job.statusUrl.flatMap(URL.init(string:)), let response = job.responseUrl.flatMap(URL.init(string:)),
            let cancel = job.cancelUrl.flatMap(URL.init(string:))
        else {
            return FalRequestHandle(requestID: id, endpoint: endpoint, queueBase: client.endpoints.queue)
        }
        let stored = FalRequestHandle(requestID: id, endpoint: endpoint, statusURL: status, responseURL: response, cancelURL: cancel)
        let (handle, replaced) = stored.confined(to: client.endpoints.queue)
        if !replaced.isEmpty {
            logger.warning("stored request URLs are on another origin; using \(origin) instead of following them",
                           metadata: ["job": "\(job.id)", "request": "\(id)", "named": "\(replaced.map(\.absoluteString).joined(separator: " "))"])
        }
        return handle
    }

    /// Pauses submission for a fault of our own machine and says so once; the runner resumes by itself.
    func pauseLocal(_ cause: SubmissionGate.PauseCause, _ reason: String, metadata: Logger.Metadata? = nil) async {
        if await gate.pause(cause, reason) {
            logger.critical("submission paused: \(reason); resuming by itself once it is fixed (checked every \(configuration.localRecheck.formattedSeconds))",
                            metadata: metadata)
            doorbell.ring()
        }
    }

    /// Pauses submission because the output tree refused a write, remembering where to probe and, when it was a
    /// lack of room, how much room the write needs.
    func pauseOutput(_ error: LocalWriteError, _ reason: String, needs bytes: Int64 = 0, metadata: Logger.Metadata? = nil) async {
        failedOutput.withLock { $0 = (error.folder, bytes) }
        await pauseLocal(.output, reason, metadata: metadata)
    }

    /// Whether the write that failed would work now: the folder takes a probe file and has the room it needed.
    func outputWritableAgain() -> Bool {
        let (folder, bytes) = failedOutput.withLock { $0 } ?? (configuration.outputDirectory, 0)
        if bytes > 0 {
            let reserved = outputReserved.withLock { $0 }
            guard let free = DiskSpace.available(at: folder), free - reserved >= bytes + Self.outputMargin else { return false }
        }
        return (try? DiskSpace.probeWrite(in: folder)) != nil
    }

    /// Room kept free beside the videos, for their manifests and the probe itself.
    static let outputMargin: Int64 = 1_000_000

    /// Reserves room for `bytes` more of video in `folder`, or throws the `LocalWriteError` (ENOSPC) that writing
    /// them would meet, without writing anything: a full disk then holds only the downloads that can finish,
    /// instead of partial files of every one of them that none can complete.
    func reserveOutput(_ bytes: Int64, for videoPath: String) throws -> OutputReservation {
        let folder = (videoPath as NSString).deletingLastPathComponent
        let granted = outputReserved.withLock { reserved -> Bool in
            guard let free = DiskSpace.available(at: folder), free - reserved >= bytes + Self.outputMargin else { return false }
            reserved += bytes
            return true
        }
        guard granted else { throw OutputFull(error: LocalWriteError(what: "video", path: videoPath, code: ENOSPC), bytes: bytes) }
        return OutputReservation(bytes: bytes, release: { [self] in outputReserved.withLock { $0 -= bytes } })
    }

    /// Lifts a local pause after a write worked, and says so once.
    func clearLocal(_ cause: SubmissionGate.PauseCause) async {
        if await gate.clear(cause) { logger.notice("\(Self.recovered(cause)); submission resumes") }
    }

    static func recovered(_ cause: SubmissionGate.PauseCause) -> String {
        switch cause {
        case .key: "the key was reloaded"
        case .store: "the job store can be written again"
        case .stateSpace: "the state folder has room again"
        case .output: "the output folder can be written again"
        }
    }

    /// Waits until `cause` clears or the recheck interval passes; false when the runner is stopping.
    func waitForLocal(_ cause: SubmissionGate.PauseCause) async -> Bool {
        await gate.waitUntilClear(cause, atMost: configuration.localRecheck)
        return !Task.isCancelled
    }

    /// A fal error as the store keeps it, with the key redacted from anything fal echoed back.
    func stored(_ error: FalError) -> StoredError {
        StoredError(reason: error.reason, message: client.key.redact(error.description), httpStatus: error.httpStatus)
    }

    /// Writes a finished job's manifest and records where it is.
    @discardableResult
    /// `finalState` is the state the job is about to be moved to, when the manifest is written just before the move.
    public func writeManifest(_ jobID: Int64, video: (path: String, bytes: Int64, sha256: String)? = nil, finalState: JobState? = nil) throws -> String? {
        guard var job = try store.job(jobID), let batch = try store.batch(job.batchId) else { return nil }
        let recordedState = job.state
        if let finalState { job.state = finalState }
        let spec = try? JSONDecoder().decode(JobSpec.self, from: Data(job.specJson.utf8))
        var uploads: [String: String] = [:]
        for image in spec?.localImages ?? [] {
            if let url = try store.cachedUpload(sha256: image.sha256, origin: client.endpoints.storageOrigin, notBefore: .distantPast) {
                uploads[image.sha256] = url
            }
        }
        let manifest = Manifest(
            batch: batch, job: job, spec: spec, attempts: try store.attempts(of: jobID),
            logs: try store.events(of: jobID).filter { $0.kind == .log }, uploads: uploads, video: video,
            pricePerSecond: configuration.pricePerSecond)
        let path = layout.manifestPath(of: job, in: batch)
        try AtomicFile.write(manifest.json.prettyData(), to: path, what: "manifest")
        if finalState == nil { try store.update(jobID, in: recordedState, set: [.manifestPath(path)]) }
        return path
    }
}

/// Room held for one download until it has landed (or failed): released when the last reference goes.
final class OutputReservation: Sendable {
    let bytes: Int64
    private let release: @Sendable () -> Void

    init(bytes: Int64, release: @escaping @Sendable () -> Void) {
        self.bytes = bytes
        self.release = release
    }

    deinit { release() }
}

/// A download that would not fit: the disk error it would meet, and the room it needs.
struct OutputFull: Error {
    let error: LocalWriteError
    let bytes: Int64
}
