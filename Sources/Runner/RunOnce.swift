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
    /// `dropFolder`'s spec files are taken as the daemon takes them (moved to accepted/ or rejected/);
    /// `specPaths`, named by hand, are never moved.
    public static func run(
        configuration: RunnerConfiguration, client: FalClient, specPaths: [String], dropFolder: String? = nil, validator: SpecValidator,
        allowDuplicate: Bool = false, logger: Logger, signals: [UnixSignal] = [], progress: (@Sendable (RunnerEnvironment, Set<Int64>) -> (any Service))? = nil
    ) async throws -> RunReport {
        let lock = try StateLock(stateDirectory: configuration.stateDirectory, purpose: "run --once")
        defer { withExtendedLifetime(lock) {} }
        let started = ContinuousClock.now
        let store = try JobStore.open(directory: configuration.stateDirectory, purpose: configuration.storePurpose)
        let environment = RunnerEnvironment(configuration: configuration, store: store, client: client, logger: logger)
        var report = RunReport()
        var touched = Set(try store.jobs(in: JobState.allCases.filter { !$0.isTerminal }).map(\.id))
        let ingestor = BatchIngestor(store: store, validator: validator, layout: environment.layout, prices: configuration.prices, logger: logger)
        if let dropFolder {
            touched.formUnion(try await take(dropFolder, with: ingestor, settle: configuration.settle, into: &report, logger: logger))
        }
        touched.formUnion(try await ingest(specPaths, with: ingestor, allowDuplicate: allowDuplicate, into: &report, logger: logger))
        let dispatcher = Dispatcher(environment: environment, mode: .untilDone)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: dispatcher, successTerminationBehavior: .gracefullyShutdownGroup),
            .init(service: StoreGuard(store: store, environment: environment)),
            .init(service: NotificationSender(environment: environment)), .init(service: HookRunner(environment: environment)),
        ]
        let posters = PosterMaker(
            setting: configuration.posters, store: store, layout: environment.layout, logger: logger, bell: environment.completionBell, catchUp: false)
        if let posters { services.append(.init(service: posters)) }
        if let progress { services.append(.init(service: progress(environment, touched))) }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: signals, logger: logger))
        do {
            try await group.run()
        } catch let lost as StoreLost {
            lost.rescue(store, logger: logger)
            throw lost
        }
        // A cron run tells what it finished before it exits; what a target does not take in time stays in the
        // outbox for the next run or the daemon.
        await HookRunner(environment: environment).drain()
        await NotificationSender(environment: environment).drain(within: .seconds(15))
        report.foreign = try store.foreignJobs(origin: environment.origin)
        report.abortReason = dispatcher.abortReason
        report.gaveUpOnFal = dispatcher.gaveUpOnFal
        report.jobs = try touched.sorted().compactMap { try store.job($0) }
        // Last: the posters of this run's jobs its service had no time for (nothing waits for them, and they can wait).
        await posters?.make(report.jobs.filter(PosterMaker.needsPoster))
        report.batchNames = Dictionary(uniqueKeysWithValues: try store.batches().map { ($0.id, $0.name) })
        report.elapsed = ContinuousClock.now - started
        store.checkpointAtExit()
        return report
    }

    /// Takes the drop folder's settled spec files as the daemon does; returns the ids of the jobs accepted.
    static func take(
        _ root: String, with ingestor: BatchIngestor, settle: Duration, into report: inout RunReport, logger: Logger
    ) async throws -> Set<Int64> {
        let folder = try DropFolder(root: root)
        let (names, unsettled) = await settled(DropFolderIntake.names(in: folder), in: root, settle: settle)
        for name in unsettled {
            logger.notice("\(name) is still being written; left for the next run")
            report.leftInPlace.append(root + "/" + name)
        }
        var accepted = Set<Int64>()
        await DropFolderIntake(ingestor: ingestor, logger: logger).take(names, from: folder) { chunk in
            for taken in chunk { accepted.formUnion(note(taken, from: root, in: &report)) }
        }
        return accepted
    }

    /// Adds what became of one drop-folder file to the report; returns the ids of the jobs it brought.
    private static func note(_ taken: DropFolderIntake.Taken, from root: String, in report: inout RunReport) -> [Int64] {
        let path = root + "/" + taken.name
        guard let outcome = taken.outcome else {
            report.notTaken.append("\(path): \(taken.storeError ?? "the store refused it")")
            return []
        }
        if taken.movedTo == nil { report.leftInPlace.append(path) }
        switch outcome {
        case .accepted(let batch, let jobs, _):
            report.accepted.append(.init(file: path, batch: batch.name, jobs: jobs.count))
            return jobs.map(\.id)
        case .duplicate(let existing):
            report.duplicates.append(.init(file: path, batch: existing.name, jobs: 0))
        case .rejected(let spec):
            report.rejected.append(spec)
            report.movedAside[spec.file] = taken.movedTo
        }
        return []
    }

    /// The files that are not being written: those untouched for `settle`, and those written more recently that
    /// keep their size and mtime through one more `settle` (a copy that just finished). The rest are unsettled.
    static func settled(_ names: [String], in root: String, settle: Duration) async -> (settled: [String], unsettled: [String]) {
        func look(_ name: String) -> (Date, Int64)? { DropFolderIntake.look(root + "/" + name).map { ($0.modified, $0.size) } }
        var fresh: [String: (Date, Int64)] = [:]
        var settled: [String] = []
        for name in names {
            guard let seen = look(name) else { continue }
            if Date().timeIntervalSince(seen.0) >= settle.seconds { settled.append(name) } else { fresh[name] = seen }
        }
        guard !fresh.isEmpty else { return (settled, []) }
        try? await Task.sleep(for: settle)
        var unsettled: [String] = []
        for (name, seen) in fresh.sorted(by: { $0.key < $1.key }) {
            guard let now = look(name) else { continue }
            if now == seen { settled.append(name) } else { unsettled.append(name) }
        }
        return (settled.sorted(), unsettled)
    }

    /// Accepts the spec files under `paths`; returns the ids of the jobs accepted.
    static func ingest(
        _ paths: [String], with ingestor: BatchIngestor, allowDuplicate: Bool, into report: inout RunReport, logger: Logger
    ) async throws -> Set<Int64> {
        var accepted = Set<Int64>()
        let list = try SpecFiles.expand(paths)
        for refused in list.refused {
            report.rejected.append(refused)
            for diagnostic in refused.diagnostics { logger.error("\(diagnostic)") }
        }
        for spec in list.files {
            let file = spec.path
            switch try await ingestor.ingest(spec, allowDuplicate: allowDuplicate) {
            case .accepted(let batch, let jobs, let warnings):
                accepted.formUnion(jobs.map(\.id))
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
        return accepted
    }
}
