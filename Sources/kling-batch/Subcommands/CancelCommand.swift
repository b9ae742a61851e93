import ArgumentParser
import FalClient
import Foundation
import JobStore
import Runner

/// `kling-batch cancel`: stop jobs locally and at fal.
struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel jobs: locally before they are submitted, and at fal (PUT cancel) once they are.",
        discussion: """
            A job waiting in fal's queue is cancelled there and never downloaded; its manifest records the \
            cancel. A job whose video is already being downloaded is finished and paid for, and is left alone. \
            Works while the daemon runs; cancelled jobs can be run again with `kling-batch retry`.

            Examples:
              kling-batch cancel teasers/teaser-b
              kling-batch cancel --batch teasers
            """
    )

    @Argument(help: "Jobs to cancel (batch/job, a prefix, or a request id).")
    var jobs: [String] = []

    @Option(help: ArgumentHelp("Cancel every unfinished job of this batch.", valueName: "batch"))
    var batch: String?

    @OptionGroup var store: StoreOptions
    @OptionGroup var fal: FalOptions
    @OptionGroup var output: OutputTreeOptions

    func validate() throws {
        if jobs.isEmpty && batch == nil { throw ValidationError("name the jobs to cancel, or give --batch") }
    }

    func run() async throws {
        let (store, settings) = try self.store.openStore(fal.flags.merging(output.flags) { $1 })
        let resolver = try JobResolver(store: store)
        var targets = try jobs.map(resolver.resolve)
        if let batch {
            let id = try resolver.batch(named: batch).id
            targets += resolver.jobs.filter { $0.batchId == id && !$0.state.isTerminal }
        }
        let logger = RunnerOptions.logger(settings)
        let layout = try await OutputLayout.forCommand(flag: output.out, configured: settings.runner.outputDirectory, store: store)
        let (targetList, names) = (targets, targets.map(resolver.name))
        let problems = try await Simulation.withClient(settings, logger: logger) { client in
            let canceller = JobCanceller(
                store: store, client: client, layout: layout, prices: settings.runner.prices, logger: logger)
            var problems = 0
            for (job, name) in zip(targetList, names) {
                do {
                    switch try await canceller.cancel(job.id) {
                    case .cancelled(_, let note): Console.out("cancelled \(name): \(note)")
                    case .requested: Console.out("cancel requested for \(name); the runner holding it cancels it at its next step")
                    case .notCancellable(let why):
                        Console.error("\(name): not cancelled, \(why)")
                        problems += 1
                    }
                } catch let error as FalError {
                    Console.error("\(name): fal refused the cancel: \(error)")
                    problems += 1
                }
            }
            return problems
        }
        if let pid = StateLock.wakeDaemon(of: settings.runner.stateDirectory) { Console.out("told the daemon (pid \(pid))") }
        if problems > 0 { throw ExitCode(1) }
    }
}
