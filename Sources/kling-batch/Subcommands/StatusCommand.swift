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
        let status = try await QueueStatus.gather(store: store, configuration: settings.runner)
        if output.json {
            Console.json(json(status))
        } else {
            printText(status, stateDirectory: settings.runner.stateDirectory)
        }
    }

    private func json(_ status: QueueStatus) -> JSONValue {
        let summary = status.summary
        var counts: [String: JSONValue] = [:]
        for state in JobState.allCases { counts[state.label] = .int(Int64(summary.counts[state, default: 0])) }
        return .object([
            "counts": .object(counts), "at_fal": .int(Int64(status.atFal)), "running": .int(Int64(summary.running)),
            "spend_today_usd": .double(USD(micros: summary.spending.todayMicros).dollars),
            "spend_total_usd": .double(USD(micros: summary.spending.totalMicros).dollars),
            "completed_today": .int(Int64(summary.spending.completedToday)),
            "oldest_queued_age_seconds": status.oldestQueued.map { .int(Int64(Date().timeIntervalSince($0))) } ?? .null,
            "submission_paused": .bool(!status.pausedReasons.isEmpty), "paused_reasons": .array(status.pausedReasons.map(JSONValue.string)),
            "budget_per_day_usd": status.budget.perDay.map { .double($0.dollars) } ?? .null,
            "budget_per_batch_usd": status.budget.perBatch.map { .double($0.dollars) } ?? .null,
            "notifications_undelivered": .int(Int64(status.undeliveredNotifications)),
            "on_complete": .object(status.hooks.mapValues { .int(Int64($0)) }),
            "runner": status.runner.map { .object(["pid": .int(Int64($0.pid)), "kind": .string($0.kind)]) } ?? .null,
        ])
    }

    private func printText(_ status: QueueStatus, stateDirectory: String) {
        let summary = status.summary
        Console.out(summary.line)
        let states = JobState.allCases.filter { summary.counts[$0, default: 0] > 0 }
        if !states.isEmpty {
            Console.out(states.map { "\($0.label) \(summary.counts[$0, default: 0])" }.joined(separator: "  "))
        }
        Console.out("at fal: \(status.atFal); spend: \(USD(micros: summary.spending.todayMicros)) today (UTC), \(USD(micros: summary.spending.totalMicros)) in total"
            + (status.budget.perDay.map { "; daily budget \($0)" } ?? "") + (status.budget.perBatch.map { "; batch budget \($0)" } ?? ""))
        if let oldest = status.oldestQueued { Console.out("oldest queued job: waiting \(Age.text(since: oldest))") }
        Console.out(status.pausedReasons.isEmpty ? "submission: running" : "submission paused: " + status.pausedReasons.joined(separator: "; "))
        if !status.hooks.isEmpty {
            Console.out("on_complete hooks: " + ["pending", "done", "failed"].compactMap { state in
                status.hooks[state].map { "\($0) \(state)\(state == "pending" ? " (including retries)" : "")" }
            }.joined(separator: ", "))
        }
        if status.undeliveredNotifications > 0 {
            Console.out("notifications: \(status.undeliveredNotifications) event\(status.undeliveredNotifications == 1 ? "" : "s") not yet delivered to every notify target")
        }
        Console.out(status.runner.map { "runner: \($0.kind) (pid \($0.pid))" } ?? "runner: none running on \(stateDirectory)")
    }
}
