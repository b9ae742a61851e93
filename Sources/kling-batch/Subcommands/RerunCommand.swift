import ArgumentParser
import Foundation
import JobStore
import KlingSpec
import Runner

/// `kling-batch rerun`: run a spec file or a past batch again, although the same content already ran.
struct RerunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rerun",
        abstract: "Run a spec file or an earlier batch again, although the same content was already accepted.",
        discussion: """
            A file is validated and accepted as a new batch (e.g. one the daemon set aside in rejected/ as a \
            duplicate); a batch name makes a new batch of the same jobs. A running daemon on the same state \
            folder picks the new jobs up at once; otherwise the next `run --once` does.

            Examples:
              kling-batch rerun jobs/rejected/teasers.yaml
              kling-batch rerun teasers                    # the batch named teasers, as `list` shows it
            """
    )

    @Argument(help: ArgumentHelp("Spec files or batch names.", valueName: "file-or-batch"))
    var targets: [String]

    @OptionGroup var runner: RunnerOptions
    @OptionGroup var spec: SpecOptions

    func run() throws {
        let settings = try runner.settings(extra: [.pricePerSecond: spec.rate].compactMapValues { $0 })
        let store = try JobStore.open(directory: settings.runner.stateDirectory)
        let layout = OutputLayout(root: settings.runner.outputDirectory)
        let ingestor = BatchIngestor(store: store, validator: spec.validator, layout: layout, pricePerSecond: settings.runner.pricePerSecond)
        var failures = 0
        for target in targets {
            if FileManager.default.fileExists(atPath: target) {
                switch try ingestor.ingest(file: target, allowDuplicate: true) {
                case .accepted(let batch, let jobs, _):
                    Console.out("accepted \(target) again as batch \(batch.name) (\(jobs.count) job\(jobs.count == 1 ? "" : "s"))")
                case .duplicate(let batch):
                    Console.out("\(target) is batch \(batch.name) already")
                case .rejected(let report):
                    for diagnostic in report.diagnostics { Console.error(diagnostic.description) }
                    Console.error("invalid \(target): \(report.errors.count) problem\(report.errors.count == 1 ? "" : "s"); nothing was queued")
                    failures += 1
                }
            } else if let batch = try store.batches().first(where: { $0.name == target }) {
                let jobs = try store.jobs(inBatch: batch.id).map {
                    NewJob(name: $0.name, specJSON: $0.specJson, endpoint: $0.endpoint, durationSeconds: $0.durationSeconds, estimatedCostMicros: $0.estimatedCostMicros)
                }
                let copy = NewBatch(stem: batch.name, sourcePath: batch.sourcePath, sourceSHA256: batch.sourceSha256, day: OutputLayout.day(of: Date()), jobs: jobs)
                if case .accepted(let record, let added) = try store.accept(copy, allowDuplicate: true, folderIsTaken: { layout.isTaken($0) }) {
                    Console.out("batch \(batch.name) queued again as batch \(record.name) (\(added.count) job\(added.count == 1 ? "" : "s"))")
                }
            } else {
                let names = try store.batches().suffix(10).map(\.name)
                Console.error("error: \(target) is neither a file nor a batch" + (names.isEmpty ? " (the store has no batches yet)" : "; recent batches: \(names.joined(separator: ", "))"))
                failures += 1
            }
        }
        if let pid = StateLock.wakeDaemon(of: settings.runner.stateDirectory) { Console.out("told the daemon (pid \(pid)) to pick them up") }
        if failures > 0 { throw ExitCode(1) }
    }
}
