import ArgumentParser
import Foundation
import JobStore
import KlingCore
import Runner

/// `kling-batch retry`: finish failed or cancelled jobs, paying again only for what fal no longer has.
struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Finish failed (or cancelled) jobs: download or fetch again what fal still has; submit again only what it does not.",
        discussion: """
            Each failed job records what it takes to finish it (`list` shows it as RETRY):
              download   fal has the video: it is downloaded again (free)
              fetch      fal finished: its result is fetched again (free)
              submit     nothing usable was paid for: it is submitted again
              resubmit   fal lost the paid result (404/410): --resubmit pays again
            Attempts and events are kept. The cost of every new submission is printed.

            Examples:
              kling-batch retry teasers/teaser-b
              kling-batch retry --failed                  # every failed job
              kling-batch retry --failed --batch teasers
              kling-batch retry --failed --resubmit       # also those whose paid result fal no longer has
            """
    )

    @Argument(help: "Jobs to retry (batch/job, a prefix, or a request id).")
    var jobs: [String] = []

    @Flag(help: "Retry every failed job (of --batch, if given).")
    var failed = false

    @Option(help: ArgumentHelp("With --failed: only this batch.", valueName: "batch"))
    var batch: String?

    @Flag(help: "Also submit again jobs whose paid result fal no longer has (each a new, paid submission).")
    var resubmit = false

    @OptionGroup var store: StoreOptions

    func validate() throws {
        if jobs.isEmpty && !failed { throw ValidationError("name the jobs to retry, or give --failed") }
        if !jobs.isEmpty && failed { throw ValidationError("give either job names or --failed, not both") }
        if batch != nil && !failed { throw ValidationError("--batch goes with --failed") }
    }

    func run() async throws {
        let (store, settings) = try self.store.openStore()
        let resolver = try JobResolver(store: store)
        let targets = try self.targets(resolver)
        let retrier = JobRetrier(store: store, queueOrigin: settings.endpoints.queueOrigin)
        var refused = 0
        var submissions: [JobRecord] = []
        for job in targets {
            let name = resolver.name(job)
            switch try await retrier.retry(job, allowPaidResubmit: resubmit) {
            case .requeued(let route, let foreignOrigin):
                Console.out("requeued \(name) to \(JobRetrier.describe(route, job))\(job.lastError.map { " (was: \(LogSafe.escape(String($0.prefix(120)))))" } ?? "")")
                if let foreignOrigin {
                    Console.out("  note: its request is at \(foreignOrigin); only a runner configured for it fetches the result (else `kling-batch store abandon \(foreignOrigin)`)")
                }
                if route.submits { submissions.append(job) }
            case .notRetryable(let state):
                Console.error("\(name) is \(state.label); only failed or cancelled jobs can be retried")
                refused += 1
            case .needsPaidResubmit(let cost):
                Console.error("\(name): fal no longer has the result it was paid for; a new submission costs \(cost). To pay for it again: kling-batch retry --resubmit \(name)")
                refused += 1
            case .changedMeanwhile:
                Console.error("\(name) changed meanwhile; look at it with `kling-batch show`")
                refused += 1
            }
        }
        if !submissions.isEmpty {
            let cost = USD(micros: submissions.reduce(0) { $0 + $1.estimatedCostMicros })
            Console.out("\(submissions.count) new submission\(submissions.count == 1 ? "" : "s"), estimated \(cost)")
        }
        if !targets.isEmpty, let pid = StateLock.wakeDaemon(of: settings.runner.stateDirectory) { Console.out("told the daemon (pid \(pid))") }
        if refused > 0 { throw ExitCode(1) }
    }

    /// The jobs named, or every failed job (of `--batch`).
    private func targets(_ resolver: JobResolver) throws -> [JobRecord] {
        guard failed else { return try jobs.map(resolver.resolve) }
        let batchID = try batch.map { try resolver.batch(named: $0).id }
        let targets = resolver.jobs.filter { $0.state == .failed && (batchID == nil || $0.batchId == batchID) }
        if targets.isEmpty { Console.out("no failed jobs" + (batch.map { " in batch \($0)" } ?? "")) }
        return targets
    }
}

extension JobRecord {
    /// The RETRY column of `list`.
    var retryWord: String {
        switch retryRoute {
        case .download?: "download"
        case .result?: "fetch"
        case .submit?: "submit"
        case .paidResubmit?: "resubmit"
        case nil: "-"
        }
    }
}
