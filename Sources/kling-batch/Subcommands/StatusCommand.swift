import ArgumentParser
import Foundation
import JobStore
import KlingCore
import Runner

/// `kling-batch status`: the runner at a glance.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Counts by state, jobs at fal, spend today and in total, the oldest queued job, and whether submission is paused.",
        discussion: """
            Safe while the daemon runs (it reads the same store).

            Examples:
              kling-batch status
              kling-batch status --json | jq .spend_today_usd
            """
    )

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let (store, settings) = try self.store.openStore()
        let holder = StateLock.holder(of: settings.runner.stateDirectory)
        let daemonStatus = holder.flatMap { $0.purpose == "daemon" ? DaemonStatusFile(stateDirectory: settings.runner.stateDirectory).read(pid: $0.pid) : nil }
        let summary = try await StatusSummary(store: store, pausedReason: daemonStatus?.pausedReason)
        let oldest = try store.oldestQueued()
        let budget = settings.runner.budget
        let atFal = JobState.atFal.reduce(0) { $0 + summary.counts[$1, default: 0] }
        var paused: [String] = []
        if let reason = summary.pausedReason { paused.append(reason) }
        // Seen from here too: a daemon whose disk is full may not be able to write its status file.
        let floor = settings.runner.minimumFreeStateBytes
        if floor > 0, let free = DiskSpace.available(at: settings.runner.stateDirectory), free < floor,
            !paused.contains(where: { $0.contains("below the floor") })
        {
            paused.append("the state folder \(settings.runner.stateDirectory) has \(DiskSpace.describe(free)) free, below the floor of \(DiskSpace.describe(floor)) (min_free_space)")
        }
        if let held = summary.heldReason { paused.append("budget: \(held)") }
        if output.json {
            var counts: [String: JSONValue] = [:]
            for state in JobState.allCases { counts[state.label] = .int(Int64(summary.counts[state, default: 0])) }
            Console.json(.object([
                "counts": .object(counts), "at_fal": .int(Int64(atFal)), "running": .int(Int64(summary.running)),
                "spend_today_usd": .double(USD(micros: summary.spending.todayMicros).dollars),
                "spend_total_usd": .double(USD(micros: summary.spending.totalMicros).dollars),
                "completed_today": .int(Int64(summary.spending.completedToday)),
                "oldest_queued_age_seconds": oldest.map { .int(Int64(Date().timeIntervalSince($0))) } ?? .null,
                "submission_paused": .bool(!paused.isEmpty), "paused_reasons": .array(paused.map(JSONValue.string)),
                "budget_per_day_usd": budget.perDay.map { .double($0.dollars) } ?? .null,
                "budget_per_batch_usd": budget.perBatch.map { .double($0.dollars) } ?? .null,
                "runner": holder.map { .object(["pid": .int(Int64($0.pid)), "kind": .string($0.purpose)]) } ?? .null,
            ]))
            return
        }
        Console.out(summary.line)
        let states = JobState.allCases.filter { summary.counts[$0, default: 0] > 0 }
        if !states.isEmpty {
            Console.out(states.map { "\($0.label) \(summary.counts[$0]!)" }.joined(separator: "  "))
        }
        Console.out("at fal: \(atFal); spend: \(USD(micros: summary.spending.todayMicros)) today (UTC), \(USD(micros: summary.spending.totalMicros)) in total"
            + (budget.perDay.map { "; daily budget \($0)" } ?? "") + (budget.perBatch.map { "; batch budget \($0)" } ?? ""))
        if let oldest { Console.out("oldest queued job: waiting \(Age.text(since: oldest))") }
        Console.out(paused.isEmpty ? "submission: running" : "submission paused: " + paused.joined(separator: "; "))
        Console.out(holder.map { "runner: \($0.purpose) (pid \($0.pid))" } ?? "runner: none running on \(settings.runner.stateDirectory)")
    }
}
