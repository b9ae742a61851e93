import ArgumentParser
import Foundation
import KlingCore
import JobStore
import Runner

/// `kling-batch purge`: forget old finished jobs; videos and manifests stay.
struct PurgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge",
        abstract: "Forget finished jobs older than a given age from the database; never deletes videos or manifests.",
        discussion: """
            Completed, failed and cancelled jobs that finished before the cutoff are removed with their attempts \
            and events; batches left empty go too. Queued and running jobs are never touched, and neither is the \
            spend ledger: budgets, `status` and reports keep counting what purged jobs cost.

            Example:
              kling-batch purge --older-than 30d
            """
    )

    @Option(name: .customLong("older-than"), help: ArgumentHelp("Age of the finished jobs to forget, e.g. 30d or 12h.", valueName: "duration"))
    var olderThan: String

    @OptionGroup var store: StoreOptions

    func validate() throws {
        guard DurationText.parse(olderThan) != nil else { throw ValidationError("--older-than must be a duration such as 30d or 12h, got '\(olderThan)'") }
    }

    func run() throws {
        let (store, _) = try self.store.openStore()
        let cutoff = Date().addingTimeInterval(-DurationText.parse(olderThan)!.inSeconds)
        let (jobs, batches) = try store.purge(finishedBefore: cutoff)
        Console.out("forgot \(jobs) finished job\(jobs == 1 ? "" : "s") and \(batches) empty batch\(batches == 1 ? "" : "es") (finished before \(cutoff.iso8601)); videos, manifests and the spend ledger are untouched")
    }
}
