import FalClient
import FalEmulator
import Foundation
import JobStore
import KlingCore
import KlingSpec
import Logging
import Runner
import TestSupport

/// One runner scenario: specs in a temp folder, an in-process emulator, and `run --once` against it.
struct Scenario {
    let folder: TemporaryDirectory
    let report: RunReport
    let counters: EmulatorCounters
    /// The emulator's request ids in the order their submits arrived.
    let submitOrder: [String]
    let configuration: RunnerConfiguration

    var store: JobStore { get throws { try JobStore.open(directory: configuration.stateDirectory) } }

    /// The output files of every completed job.
    func outputs() throws -> [(video: URL, manifest: JSONValue)] {
        try report.completed.map { job in
            guard let videoPath = job.videoPath, let manifestPath = job.manifestPath else {
                throw HarnessError("completed job \(job.name) has no video or manifest path")
            }
            return (URL(fileURLWithPath: videoPath), try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: manifestPath))))
        }
    }
}

/// A runner configuration with every wait shortened, so scenarios take seconds; the logic is unchanged.
func fastConfiguration(in folder: TemporaryDirectory) -> RunnerConfiguration {
    var configuration = RunnerConfiguration(stateDirectory: folder.path + "/state", outputDirectory: folder.path + "/out")
    configuration.concurrency = 8
    configuration.retry.base = .milliseconds(40)
    configuration.retry.cap = .seconds(1)
    configuration.retry.rateLimitDefault = .milliseconds(200)
    configuration.retry.deferralCap = .seconds(1)
    configuration.retry.maxAttempts = 12
    configuration.polling.first = .milliseconds(40)
    configuration.polling.maxInQueue = .milliseconds(400)
    configuration.polling.maxInProgress = .milliseconds(400)
    configuration.polling.minimum = .milliseconds(20)
    configuration.reconcileGrace = .seconds(2)
    configuration.concurrencyRecovery = .milliseconds(500)
    configuration.reconcileInterval = .milliseconds(150)
    return configuration
}

func quietLogger() -> Logger {
    var logger = Logger(label: "runner-test")
    logger.logLevel = ProcessInfo.processInfo.environment["KB_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .error
    return logger
}

/// Writes specs with `writeSpecs`, runs them through a fresh emulator configured by `emulator`, and returns what happened.
func runScenario(
    emulator configure: @escaping @Sendable (inout EmulatorConfiguration) -> Void = { _ in },
    runner adjust: @escaping @Sendable (inout RunnerConfiguration) -> Void = { _ in },
    writeSpecs: @escaping @Sendable (URL) throws -> Void
) async throws -> Scenario {
    let folder = try TemporaryDirectory("scenario")
    let specs = folder.url.appendingPathComponent("jobs")
    try FileManager.default.createDirectory(at: specs, withIntermediateDirectories: true)
    try writeSpecs(specs)
    var settings = fastConfiguration(in: folder)
    adjust(&settings)
    let configuration = settings
    return try await EmulatorHarness.run(configure: { knobs in
        knobs.runSeconds = 0.1
        knobs.retryAfterSeconds = 0.2
        configure(&knobs)
    }) { harness in
        let report = try await RunOnce.run(
            configuration: configuration, client: harness.client, specPaths: [specs.path], validator: SpecValidator(), logger: quietLogger())
        let order = await harness.emulator.state.requestSummaries().map(\.requestID)
        return Scenario(folder: folder, report: report, counters: await harness.emulator.state.counters(), submitOrder: order, configuration: configuration)
    }
}

/// One-job specs in `folder/jobs`, and a store, environment and ingestor over `client`: for tests that drive one
/// runner part (the dispatcher, the watcher) directly instead of a whole `run --once`.
struct RunnerFixture {
    let jobs: URL
    let specPaths: [String]
    let store: JobStore
    let environment: RunnerEnvironment
    let ingestor: BatchIngestor

    init(in folder: TemporaryDirectory, specs count: Int, configuration: RunnerConfiguration, client: FalClient) throws {
        jobs = folder.url.appendingPathComponent("jobs")
        try FileManager.default.createDirectory(at: jobs, withIntermediateDirectories: true)
        specPaths = try SpecWriter.writeJobs(count: count, in: jobs, sharedImages: 1)
        store = try JobStore.open(directory: configuration.stateDirectory)
        environment = RunnerEnvironment(configuration: configuration, store: store, client: client, logger: quietLogger())
        ingestor = BatchIngestor(store: store, validator: SpecValidator(), layout: environment.layout, prices: configuration.prices)
    }

    /// Accepts every spec the fixture wrote; returns their jobs' ids in order.
    func acceptSpecs() async throws -> [Int64] {
        var ids: [Int64] = []
        for path in specPaths {
            guard case .accepted(_, let jobs, _) = try await ingestor.ingest(file: path) else { throw HarnessError("\(path) was not accepted") }
            ids.append(jobs[0].id)
        }
        return ids
    }
}
