import Foundation
import JobStore
import Logging
import ServiceLifecycle

/// Keeps systemd told: STATUS= when the picture changes, WATCHDOG=1 at half of `$WATCHDOG_USEC`, and
/// STOPPING=1 as soon as shutdown begins. Its look at the store every 2 s is the daemon's only polling of it: a
/// change fires `storeChanges` and rings the notification sender.
public final class StatusReporter: Service, Sendable {
    private let environment: RunnerEnvironment
    private let notifier: SystemdNotifier
    /// How often the status line is recomputed (a few cheap counts).
    private let refresh: Duration

    public init(environment: RunnerEnvironment, notifier: SystemdNotifier, refresh: Duration = .seconds(2)) {
        self.environment = environment
        self.notifier = notifier
        self.refresh = refresh
    }

    public func run() async throws {
        var last: String?
        var seen: (event: Int64, paused: String?, day: String)?
        var nextWatchdog = ContinuousClock.now
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let now = ContinuousClock.now
                if let interval = notifier.watchdogInterval, now >= nextWatchdog {
                    notifier.watchdog()
                    nextWatchdog = now + interval
                }
                let paused = await environment.gate.pausedReason
                let marker = ((try? await environment.store.lastEventID()) ?? -1, paused, BudgetDay.of(Date()))
                let changed = seen.map { $0.event != marker.0 || $0.paused != marker.1 || $0.day != marker.2 } ?? true
                if changed {
                    // One look at the store for everyone: pages and the outbox wake on it instead of each polling.
                    environment.storeChanges.fire()
                    environment.outlet.bell.ring()
                    await logOperatorEvents(after: seen?.event)
                }
                seen = marker
                if changed, let line = try? await StatusSummary(store: environment.store, pausedReason: paused).line, line != last {
                    notifier.status(line)
                    last = line
                    DaemonStatusFile(stateDirectory: environment.configuration.stateDirectory).write(line: line, pausedReason: paused)
                }
                let wake = notifier.watchdogInterval == nil ? now + refresh : min(now + refresh, nextWatchdog)
                try? await cancelWhenGracefulShutdown { try await Task.sleep(until: wake, clock: .continuous) }
            }
        } onGracefulShutdown: { [notifier] in
            notifier.stopping()
            notifier.status("stopping: requests at fal continue there and are resumed at the next start")
        }
    }

    /// What operators did from the CLI (cancel, retry, abandon) happens in another process: the daemon's log
    /// says so too, so that its journal tells a job's whole story.
    private func logOperatorEvents(after id: Int64?) async {
        guard let id, let events = try? await environment.store.operatorEvents(after: id) else { return }
        for event in events {
            var name = "job \(event.jobId)"
            if let job = try? await environment.store.job(event.jobId) { name = await environment.displayName(job) }
            environment.logger.notice("\(event.message)", metadata: ["job": "\(name)"])
        }
    }
}
