import FalClient
import Foundation
import JobStore
import KlingCore
import KlingSpec
import Logging
import ServiceLifecycle
import UnixSignals

/// `run --once`: accept the given spec files, run every unfinished job in the store to its end, and report.
public enum RunOnce {
    /// Runs to completion. `signals` stop it gracefully (jobs in flight are resumed by the next run).
    public static func run(
        configuration: RunnerConfiguration, client: FalClient, specPaths: [String], validator: SpecValidator,
        allowDuplicate: Bool = false, logger: Logger, signals: [UnixSignal] = [], progress: (@Sendable (RunnerEnvironment, Set<Int64>) -> (any Service))? = nil
    ) async throws -> RunReport {
        let lock = try StateLock(stateDirectory: configuration.stateDirectory, purpose: "run --once")
        defer { withExtendedLifetime(lock) {} }
        let clock = ContinuousClock()
        let started = clock.now
        let store = try JobStore.open(directory: configuration.stateDirectory, purpose: configuration.storePurpose)
        let environment = RunnerEnvironment(configuration: configuration, store: store, client: client, logger: logger)
        var report = RunReport()
        var touched = Set(try store.jobs(in: JobState.allCases.filter { !$0.isTerminal }).map(\.id))
        let ingestor = BatchIngestor(store: store, validator: validator, layout: environment.layout, pricePerSecond: configuration.pricePerSecond)
        let list = try SpecFiles.expand(specPaths)
        for refused in list.refused {
            report.rejected.append(refused)
            for diagnostic in refused.diagnostics { logger.error("\(diagnostic)") }
        }
        for spec in list.files {
            let file = spec.path
            switch try ingestor.ingest(spec, allowDuplicate: allowDuplicate) {
            case .accepted(let batch, let jobs, let warnings):
                touched.formUnion(jobs.map(\.id))
                report.accepted.append(.init(file: file, batch: batch.name, jobs: jobs.count))
                for warning in warnings { logger.warning("\(warning)") }
                logger.info("accepted \(file) as batch \(batch.name) (\(jobs.count) job\(jobs.count == 1 ? "" : "s"))")
            case .duplicate(let existing):
                report.duplicates.append(.init(file: file, batch: existing.name, jobs: 0))
                logger.notice("\(file) was already accepted as batch \(existing.name); not running it again (use --rerun to run it again)")
            case .rejected(let rejected):
                report.rejected.append(rejected)
                for diagnostic in rejected.diagnostics { logger.error("\(diagnostic)") }
            }
        }
        let dispatcher = Dispatcher(environment: environment, mode: .untilDone)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: dispatcher, successTerminationBehavior: .gracefullyShutdownGroup),
            .init(service: StoreGuard(environment: environment)),
        ]
        if let progress { services.append(.init(service: progress(environment, touched))) }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: signals, logger: logger))
        do {
            try await group.run()
        } catch let lost as StoreLost {
            lost.rescue(store, logger: logger)
            throw lost
        }
        report.foreign = try store.foreignJobs(origin: environment.origin)
        report.abortReason = dispatcher.abortReason
        report.jobs = try touched.sorted().compactMap { try store.job($0) }
        report.batchNames = Dictionary(uniqueKeysWithValues: try store.batches().map { ($0.id, $0.name) })
        report.elapsed = clock.now - started
        report.pricePerSecond = configuration.pricePerSecond
        return report
    }
}

/// What a `run --once` did.
public struct RunReport: Sendable {
    /// A spec file and the batch it became.
    public struct FileOutcome: Sendable {
        public var file: String
        public var batch: String
        public var jobs: Int
    }

    public var accepted: [FileOutcome] = []
    public var duplicates: [FileOutcome] = []
    public var rejected: [SpecReport] = []
    /// Every job this run worked on, as it ended.
    public var jobs: [JobRecord] = []
    public var batchNames: [Int64: String] = [:]
    public var abortReason: String?
    /// Unfinished jobs left alone because their request went to another origin, by that origin.
    public var foreign: [String: [Int64]] = [:]
    public var elapsed: Duration = .zero
    public var pricePerSecond = USD.klingO1PerSecond

    public var completed: [JobRecord] { jobs.filter { $0.state == .completed } }
    public var failed: [JobRecord] { jobs.filter { $0.state == .failed } }
    public var unfinished: [JobRecord] { jobs.filter { !$0.state.isTerminal } }
    public var secondsOfVideo: Int { completed.reduce(0) { $0 + $1.durationSeconds } }
    public var cost: USD { pricePerSecond * secondsOfVideo }

    /// Exit 0 only when every spec was valid and every job completed.
    public var succeeded: Bool { rejected.isEmpty && abortReason == nil && jobs.allSatisfy { $0.state == .completed } }

    /// The summary printed at the end of a run.
    public var summary: String {
        var lines: [String] = []
        let total = jobs.count
        lines.append("\(completed.count) of \(total) job\(total == 1 ? "" : "s") completed, \(failed.count) failed"
            + (unfinished.isEmpty ? "" : ", \(unfinished.count) unfinished")
            + (jobs.filter { $0.state == .cancelled }.isEmpty ? "" : ", \(jobs.filter { $0.state == .cancelled }.count) cancelled")
            + "; \(secondsOfVideo) s of video, \(cost) (estimated); took \(elapsed.formattedSeconds)")
        for job in failed {
            lines.append("  failed \(batchNames[job.batchId] ?? "?")/\(job.name): \(job.lastError ?? "unknown error")")
        }
        for job in jobs where job.state == .held {
            lines.append("  held \(batchNames[job.batchId] ?? "?")/\(job.name): \(job.heldReason ?? "waiting for budget") (raise the budget and run again)")
        }
        for report in rejected { lines.append("  rejected \(report.file): \(report.errors.count) problem\(report.errors.count == 1 ? "" : "s")") }
        for (origin, ids) in foreign.sorted(by: { $0.key < $1.key }) {
            lines.append("  left untouched: \(ids.count) job\(ids.count == 1 ? "" : "s") whose request went to \(origin) (run against it with --fal-url \(origin), "
                + "or `kling-batch store abandon \(origin)`)")
        }
        if let abortReason { lines.append("stopped early: \(abortReason)") }
        return lines.joined(separator: "\n")
    }
}
