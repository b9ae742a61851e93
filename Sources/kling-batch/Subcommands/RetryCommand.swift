import ArgumentParser
import Foundation
import JobStore
import Runner

/// `kling-batch retry`: requeue failed or cancelled jobs, keeping their history.
struct RetryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Requeue failed (or cancelled) jobs for a new run; their attempts and events are kept.",
        discussion: """
            Examples:
              kling-batch retry teasers/teaser-b
              kling-batch retry --failed                  # every failed job
              kling-batch retry --failed --batch teasers
            """
    )

    @Argument(help: "Jobs to retry (batch/job, a prefix, or a request id).")
    var jobs: [String] = []

    @Flag(help: "Retry every failed job (of --batch, if given).")
    var failed = false

    @Option(help: ArgumentHelp("With --failed: only this batch.", valueName: "batch"))
    var batch: String?

    @OptionGroup var store: StoreOptions

    func validate() throws {
        if jobs.isEmpty && !failed { throw ValidationError("name the jobs to retry, or give --failed") }
        if !jobs.isEmpty && failed { throw ValidationError("give either job names or --failed, not both") }
        if batch != nil && !failed { throw ValidationError("--batch goes with --failed") }
    }

    func run() throws {
        let (store, settings) = try self.store.openStore()
        let resolver = try JobResolver(store: store)
        var targets: [JobRecord]
        if failed {
            let batchID = try batch.map { try resolver.batch(named: $0).id }
            targets = resolver.jobs.filter { $0.state == .failed && (batchID == nil || $0.batchId == batchID) }
            if targets.isEmpty { Console.out("no failed jobs" + (batch.map { " in batch \($0)" } ?? "")) }
        } else {
            targets = try jobs.map(resolver.resolve)
        }
        var refused = 0
        for job in targets {
            guard job.state == .failed || job.state == .cancelled else {
                Console.error("\(resolver.name(job)) is \(job.state.label); only failed or cancelled jobs can be retried")
                refused += 1
                continue
            }
            do {
                try store.requeue(job.id, from: job.state)
                Console.out("requeued \(resolver.name(job)) (was \(job.state.label)\(job.lastError.map { ": \($0.prefix(120))" } ?? ""))")
            } catch StoreError.stale {
                Console.error("\(resolver.name(job)) changed meanwhile; look at it with `kling-batch show`")
                refused += 1
            }
        }
        if !targets.isEmpty, let pid = StateLock.wakeDaemon(of: settings.runner.stateDirectory) { Console.out("told the daemon (pid \(pid))") }
        if refused > 0 { throw ExitCode(1) }
    }
}
