import ArgumentParser
import Foundation
import JobStore
import KlingCore
import Runner

/// `kling-batch list`: one line per job.
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "One line per job: name, state, attempts, age, request id, cost, and what `retry` would do.",
        discussion: """
            Examples:
              kling-batch list --state failed
              kling-batch list --batch teasers --since 2h
              kling-batch list --state completed --flagged
              kling-batch list --meta client=acme --meta campaign=spring
              kling-batch list --json | jq -r '.[] | select(.state == "held") | .name'
            """
    )

    @Option(help: ArgumentHelp("Only jobs in this state (repeatable): \(JobState.allCases.map(\.label).joined(separator: ", ")).", valueName: "state"))
    var state: [String] = []

    @Option(help: ArgumentHelp("Only jobs of this batch.", valueName: "batch"))
    var batch: String?

    @Option(help: ArgumentHelp("Only jobs accepted within this long, e.g. 30m, 2h, 7d.", valueName: "duration"))
    var since: String?

    @Option(help: ArgumentHelp("Only jobs whose spec's meta has this value (repeatable; all must match).", valueName: "key=value"))
    var meta: [String] = []

    @Flag(help: "Only jobs whose video needs a look: its length or shape differs from what was paid for.")
    var flagged = false

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        for name in state where JobState(rawValue: name) == nil {
            throw ValidationError("--state must be one of \(JobState.allCases.map(\.label).joined(separator: ", ")); got '\(name)'")
        }
        for pair in meta where !pair.contains("=") { throw ValidationError("--meta must be key=value, got '\(pair)'") }
        if let since, DurationText.parse(since) == nil { throw ValidationError("--since must be a duration such as 30m, 2h or 7d, got '\(since)'") }
    }

    func run() throws {
        let (store, _) = try self.store.openStore()
        let resolver = try JobResolver(store: store)
        var jobs = resolver.jobs
        if !state.isEmpty { jobs = jobs.filter { state.contains($0.state.rawValue) } }
        if let batch { let id = try resolver.batch(named: batch).id; jobs = jobs.filter { $0.batchId == id } }
        if flagged { jobs = jobs.filter { $0.needsReview != nil } }
        if !meta.isEmpty { jobs = jobs.filter { Self.matches($0.specMeta, meta) } }
        if let cutoff = since.flatMap(DurationText.parse) { jobs = jobs.filter { Date().timeIntervalSince($0.createdAt) <= cutoff.inSeconds } }
        if output.json {
            Console.json(.array(jobs.map { job in
                .object([
                    "name": .string(resolver.name(job)), "batch": .string(resolver.batches[job.batchId]?.name ?? ""), "job": .string(job.name),
                    "state": .string(job.state.label), "attempts": .int(Int64(job.lastAttempt)), "attempts_counted": .int(Int64(job.attempts)),
                    "request_id": job.requestId.map(JSONValue.string) ?? .null,
                    "created_at": .string(job.createdAt.iso8601), "duration_s": .int(Int64(job.durationSeconds)),
                    "estimated_cost_usd": .double(USD(micros: job.estimatedCostMicros).dollars),
                    "held_reason": job.heldReason.map(JSONValue.string) ?? .null, "last_error": job.lastError.map(JSONValue.string) ?? .null,
                    "video": job.videoPath.map(JSONValue.string) ?? .null,
                    "retry": job.retryRoute.map { .string($0.rawValue) } ?? .null,
                    "needs_review": job.needsReview.map(JSONValue.string) ?? .null,
                    "priority": .string(job.priority.label),
                    "meta": .object(job.specMeta),
                ])
            }))
            return
        }
        guard !jobs.isEmpty else {
            Console.out("no jobs" + (state.isEmpty && batch == nil && since == nil && !flagged && meta.isEmpty ? " yet" : " match"))
            return
        }
        var table = TextTable([("JOB", .left), ("STATE", .left), ("ATTEMPTS", .right), ("AGE", .right), ("REQUEST", .left), ("COST", .right), ("RETRY", .left)])
        for job in jobs {
            table.add([resolver.name(job), job.state.label, "\(job.lastAttempt)", Age.text(since: job.createdAt), job.requestId ?? "-",
                       "\(USD(micros: job.estimatedCostMicros))", job.retryWord])
        }
        let total = USD(micros: jobs.reduce(0) { $0 + $1.estimatedCostMicros })
        Console.out(table.render(footer: ["\(jobs.count) job\(jobs.count == 1 ? "" : "s")", "", "", "", "", "\(total)", ""]))
        for job in jobs { if let review = job.needsReview { Console.out("\(resolver.name(job)) needs review: \(review)") } }
        if jobs.contains(where: { $0.retryRoute != nil }) {
            Console.out("RETRY: download/fetch are free (fal still has the result); submit pays again; resubmit needs --resubmit (fal lost a paid result)")
        }
    }

    /// Whether every `key=value` matches: a value is compared as written (`12`, `true`, `acme`).
    static func matches(_ meta: [String: JSONValue], _ pairs: [String]) -> Bool {
        pairs.allSatisfy { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let value = meta[String(parts[0])] else { return false }
            let wanted = parts.count > 1 ? String(parts[1]) : ""
            switch value {
            case .string(let text): return text == wanted
            default: return value.canonicalString() == wanted
            }
        }
    }
}
