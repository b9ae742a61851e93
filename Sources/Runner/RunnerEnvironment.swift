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

    public init(configuration: RunnerConfiguration, store: JobStore, client: FalClient, logger: Logger, crash: CrashPoints = CrashPoints()) {
        self.store = store
        self.client = client
        self.logger = logger
        self.crash = crash
        layout = OutputLayout(root: configuration.outputDirectory)
        doorbell = Doorbell()
        gate = SubmissionGate(limit: configuration.concurrency, recoveryInterval: configuration.concurrencyRecovery.seconds, doorbell: doorbell)
        uploads = UploadCoordinator(
            store: store, client: client, permits: AsyncSemaphore(permits: configuration.uploadConcurrency), reuse: configuration.uploadReuse)
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

    /// The request's URLs as stored (rebuilt from the queue base when fal gave none); nil before a submit.
    func handle(of job: JobRecord) -> FalRequestHandle? {
        guard let id = job.requestId, let endpoint = FalEndpointID(job.endpoint) else { return nil }
        guard let status = job.statusUrl.flatMap(URL.init(string:)), let response = job.responseUrl.flatMap(URL.init(string:)),
            let cancel = job.cancelUrl.flatMap(URL.init(string:))
        else {
            return FalRequestHandle(requestID: id, endpoint: endpoint, queueBase: client.endpoints.queue)
        }
        return FalRequestHandle(requestID: id, endpoint: endpoint, statusURL: status, responseURL: response, cancelURL: cancel)
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
            if let url = try store.cachedUpload(sha256: image.sha256, notBefore: .distantPast) { uploads[image.sha256] = url }
        }
        let manifest = Manifest(
            batch: batch, job: job, spec: spec, attempts: try store.attempts(of: jobID),
            logs: try store.events(of: jobID).filter { $0.kind == .log }, uploads: uploads, video: video,
            pricePerSecond: configuration.pricePerSecond)
        let path = layout.manifestPath(of: job, in: batch)
        try AtomicFile.write(manifest.json.prettyData(), to: path)
        if finalState == nil { try store.update(jobID, in: recordedState, set: [.manifestPath(path)]) }
        return path
    }
}
