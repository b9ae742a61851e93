import ArgumentParser
import Foundation
import JobStore
import KlingCore
import Runner

/// `kling-batch retry`: finish failed or cancelled jobs, paying again only for what fal no longer has.
struct RetryCommand: ParsableCommand {
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
        var submissions: [JobRecord] = []
        for job in targets {
            guard let route = job.retryRoute else {
                Console.error("\(resolver.name(job)) is \(job.state.label); only failed or cancelled jobs can be retried")
                refused += 1
                continue
            }
            if route == .paidResubmit && !resubmit {
                Console.error("\(resolver.name(job)): fal no longer has the result it was paid for; a new submission costs \(USD(micros: job.estimatedCostMicros)). "
                    + "To pay for it again: kling-batch retry --resubmit \(resolver.name(job))")
                refused += 1
                continue
            }
            do {
                try store.requeue(job.id, from: job.state, route: route)
                Console.out("requeued \(resolver.name(job)) to \(Self.describe(route, job))\(job.lastError.map { " (was: \(LogSafe.escape(String($0.prefix(120)))))" } ?? "")")
                if route == .result, let origin = job.falOrigin, origin != settings.endpoints.queueOrigin {
                    Console.out("  note: its request is at \(origin); only a runner configured for it fetches the result (else `kling-batch store abandon \(origin)`)")
                }
                if route.submits { submissions.append(job) }
            } catch StoreError.stale {
                Console.error("\(resolver.name(job)) changed meanwhile; look at it with `kling-batch show`")
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

    static func describe(_ route: RetryRoute, _ job: JobRecord) -> String {
        switch route {
        case .download: "download the video again (free; nothing is submitted)"
        case .result: "fetch the result of request \(job.requestId ?? "?") again (free; nothing is submitted)"
        case .submit: "submit again (\(USD(micros: job.estimatedCostMicros)))"
        case .paidResubmit: "submit again, paying a second time (\(USD(micros: job.estimatedCostMicros)))"
        }
    }
}

extension JobRecord {
    /// What `retry` would do for this job; nil when it is not failed or cancelled.
    var retryRoute: RetryRoute? {
        switch state {
        case .failed: retryBy ?? .submit
        case .cancelled: .submit
        default: nil
        }
    }

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
