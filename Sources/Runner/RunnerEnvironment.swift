import FalClient
import Foundation
import JobStore
import KlingCore
import Logging
import Synchronization

/// What every part of a runner shares: the queue, the client, the limits and the clocks. Only wiring: the work
/// is done by the parts it holds (executors, the manifest writer, the gate).
public final class RunnerEnvironment: Sendable {
    public let store: any JobQueue
    public let client: FalClient
    public let layout: OutputLayout
    public let gate: SubmissionGate
    public let doorbell: Doorbell
    public let logger: Logger
    /// Events that happen outside a job's transaction (pauses), on their way to the outbox.
    public let outlet: NotificationOutlet
    /// Rung when a job completes with an on_complete hook, or a hook ends, so the hook runner starts the next.
    public let hookBell = Doorbell()
    /// Rung when a job completes, so the poster maker makes its poster at once.
    public let completionBell = Doorbell()
    /// Fired when the store's newest event moves, as the daemon's status reporter sees it every 2 s (whoever wrote
    /// it: this runner or a command): live pages and the notification sender wait on it instead of polling.
    public let storeChanges = Broadcast()
    /// Verified webhooks, waking the jobs they name (see `WebhookEndpoint`).
    public let webhooks: WebhookInbox
    let uploads: UploadCoordinator
    let finder: RequestFinder
    let downloads: AsyncSemaphore
    let manifests: ManifestWriter
    let names: BatchNames
    let estimator = RunTimeEstimator()
    let crash: CrashPoints
    private let settings: Mutex<RunnerConfiguration>
    /// The folder whose write failed last, and the room the write needed (see `+LocalDisk`).
    let failedOutput = Mutex<(folder: String, bytes: Int64)?>(nil)
    /// Bytes of videos being downloaded that are not on disk yet, so downloads start only while they all fit.
    let outputReserved = Mutex<Int64>(0)

    public init(configuration: RunnerConfiguration, store: any JobQueue, client: FalClient, logger: Logger, crash: CrashPoints = CrashPoints()) {
        self.store = store
        self.client = client
        self.logger = logger
        self.crash = crash
        webhooks = WebhookInbox(logger: logger)
        layout = OutputLayout(root: configuration.outputDirectory)
        doorbell = Doorbell()
        let outlet = NotificationOutlet(store: store, logger: logger)
        self.outlet = outlet
        gate = SubmissionGate(
            limit: configuration.concurrency, recoveryInterval: configuration.concurrencyRecovery.seconds, doorbell: doorbell,
            observer: { change in outlet.post(NotificationOutlet.event(for: change)) })
        // An outage of fal starts a give-up clock (run --once); the dispatcher must wake to set it.
        client.contact.whenOutageStarts { [doorbell] in doorbell.ring() }
        uploads = UploadCoordinator(
            store: store, client: client, permits: AsyncSemaphore(permits: configuration.uploadConcurrency), reuse: configuration.uploadReuse,
            origin: client.endpoints.storageOrigin)
        finder = RequestFinder(client: client)
        downloads = AsyncSemaphore(permits: configuration.downloadConcurrency)
        settings = Mutex(configuration)
        names = BatchNames(store: store)
        manifests = ManifestWriter(store: store, layout: layout, storageOrigin: client.endpoints.storageOrigin, crash: crash, logger: logger)
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

    /// The origin this runner sends requests to; jobs whose request went elsewhere are not touched.
    public var origin: String { client.endpoints.queueOrigin }

    /// Who this runner is, written on every attempt it sends.
    public var runner: RunnerIdentity { .current }

    /// Whether the job needs the key at another origin than this runner's (see `RequestHandles.isForeign`).
    public func isForeign(_ job: JobRecord) -> Bool { RequestHandles.isForeign(job, origin: origin) }

    /// The request's URLs, confined to the configured origin (see `RequestHandles.handle`).
    func handle(of job: JobRecord) -> FalRequestHandle? { RequestHandles.handle(of: job, client: client, logger: logger) }

    /// A fal error as the store keeps it, with the key redacted from anything fal echoed back.
    func stored(_ error: FalError) -> StoredError {
        StoredError(reason: error.reason, message: client.key.redact(error.description), httpStatus: error.httpStatus)
    }

    /// `batch/job` for log lines and messages (the batch's name read once, then remembered).
    public func displayName(_ job: JobRecord) async -> String {
        "\(await names.name(of: job.batchId))/\(job.name)"
    }
}

/// Batch names by id, read once each: log lines name every job, and a batch's name never changes.
final class BatchNames: Sendable {
    private let store: any JobQueue
    private let known = Mutex<[Int64: String]>([:])

    init(store: any JobQueue) { self.store = store }

    /// The name, reading it when it is not known yet.
    func name(of batchID: Int64) async -> String {
        if let name = known.withLock({ $0[batchID] }) { return name }
        guard let name = try? await store.batch(batchID)?.name else { return "batch\(batchID)" }
        known.withLock { $0[batchID] = name }
        return name
    }

    /// The name if it was read before (an executor reads it when it starts), else a stand-in.
    func cached(_ batchID: Int64) -> String { known.withLock { $0[batchID] } ?? "batch\(batchID)" }
}
