import ArgumentParser
import Foundation
import JobStore
import KlingSpec
import Runner

/// `kling-batch rerun`: run a spec file or a past batch again, although the same content already ran.
struct RerunCommand: AsyncParsableCommand {
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

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputTreeOptions
    @OptionGroup var spec: SpecOptions

    func run() async throws {
        let (store, settings) = try self.store.openStore(output.flags.merging(spec.priceFlags) { $1 })
        let layout = try await OutputLayout.forCommand(flag: output.out, configured: settings.runner.outputDirectory, store: store)
        let ingestor = BatchIngestor(store: store, validator: spec.validator, layout: layout, prices: settings.runner.prices)
        var failures = 0
        for target in targets {
            let isFile = FileManager.default.fileExists(atPath: target)
            let outcome = isFile ? try await ingestor.ingest(file: target, allowDuplicate: true) : try await ingestor.rerun(batchNamed: target)
            switch outcome {
            case .accepted(let batch, let jobs, _)?:
                Console.out("\(isFile ? "accepted \(target) again" : "batch \(target) queued again") as batch \(batch.name) (\(jobs.count) job\(jobs.count == 1 ? "" : "s"))")
            case .duplicate(let batch)?:
                Console.out("\(target) is batch \(batch.name) already")
            case .rejected(let report)?:
                for diagnostic in report.diagnostics { Console.error(diagnostic.description) }
                Console.error("invalid \(target): \(report.errors.count) problem\(report.errors.count == 1 ? "" : "s"); nothing was queued")
                failures += 1
            case nil:
                let names = try store.batches().suffix(10).map(\.name)
                Console.error("error: \(target) is neither a file nor a batch" + (names.isEmpty ? " (the store has no batches yet)" : "; recent batches: \(names.joined(separator: ", "))"))
                failures += 1
            }
        }
        if let pid = StateLock.wakeDaemon(of: settings.runner.stateDirectory) { Console.out("told the daemon (pid \(pid)) to pick them up") }
        if failures > 0 { throw ExitCode(1) }
    }
}
