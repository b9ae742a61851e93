import Foundation
import JobStore
import KlingCore

/// Everything `kling-batch status` says, gathered in one place: the store's counts and spend, who runs on the
/// state folder, and every reason submission is paused, including one seen from outside (a full state disk can
/// keep the daemon from writing its own status file).
public struct QueueStatus: Sendable {
    public var summary: StatusSummary
    public var oldestQueued: Date?
    /// Jobs that hold, or may hold, a request at fal.
    public var atFal: Int
    /// Why nothing new is submitted: the daemon's own reasons, the state disk's floor, the budget.
    public var pausedReasons: [String]
    public var budget: SpendLimits
    /// The process holding the state folder's lock, and what it is (daemon, run).
    public var runner: (pid: Int32, kind: String)?
    /// Events in the outbox some notify target has not received yet.
    public var undeliveredNotifications = 0
    /// Completed jobs by on_complete hook state.
    public var hooks: [String: Int] = [:]

    public static func gather(store: any JobQueue, configuration: RunnerConfiguration, now: Date = Date()) async throws -> QueueStatus {
        let state = configuration.stateDirectory
        let holder = StateLock.holder(of: state)
        let daemonStatus = holder.flatMap { $0.purpose == "daemon" ? DaemonStatusFile(stateDirectory: state).read(pid: $0.pid) : nil }
        let summary = try await StatusSummary(store: store, pausedReason: daemonStatus?.pausedReason, now: now)
        var paused: [String] = summary.pausedReason.map { [$0] } ?? []
        let floor = configuration.minimumFreeStateBytes
        if floor > 0, let free = DiskSpace.available(at: state), free < floor, !paused.contains(where: { $0.contains("below the floor") }) {
            paused.append("the state folder \(state) has \(DiskSpace.describe(free)) free, below the floor of \(DiskSpace.describe(floor)) (min_free_space)")
        }
        if let held = summary.heldReason { paused.append("budget: \(held)") }
        var status = QueueStatus(
            summary: summary, oldestQueued: try await store.oldestQueued(),
            atFal: JobState.atFal.reduce(0) { $0 + summary.counts[$1, default: 0] },
            pausedReasons: paused, budget: configuration.budget, runner: holder.map { ($0.pid, $0.purpose) })
        status.undeliveredNotifications = try await store.undeliveredNotifications()
        status.hooks = try await store.hookCounts()
        return status
    }
}
