import AsyncHTTPClient
import Foundation
import JobStore
import KlingCore
import Logging
import ServiceLifecycle

/// When a failed delivery is tried again: `notify_retry` (5 s) after the first failure, doubling, at most 10 minutes apart; an
/// event 24 hours old is given up on (its failure stays in the outbox and the log).
enum NotificationRetry {
    static let giveUpAfter: TimeInterval = 86_400
    static let longest: TimeInterval = 600

    /// When to try again after `attempts` failed tries, the first wait being `first` (`notify_retry`); nil: give up.
    static func next(afterAttempts attempts: Int, now: Date, createdAt: Date, first: TimeInterval = 5) -> Date? {
        guard now.timeIntervalSince(createdAt) < giveUpAfter else { return nil }
        let delay = min(longest, first * pow(2, Double(max(0, min(attempts, 20) - 1))))
        return now.addingTimeInterval(delay)
    }
}

/// Tells every configured target each event in the outbox, at least once, with the event's id for deduplication.
/// Each target is served by its own child task, so a slow or dead one delays nobody else, and nothing here ever
/// waits in the runner's path: the runner only writes to the outbox.
public struct NotificationSender: Service {
    let environment: RunnerEnvironment
    /// How often the outbox is read when nothing rings. Job transitions write events without ringing: in the
    /// daemon the status reporter rings on every change it sees (so 30 s is only a safety net), in `run --once` 2 s.
    let interval: Duration

    public init(environment: RunnerEnvironment, interval: Duration = .seconds(2)) {
        self.environment = environment
        self.interval = interval
    }

    public func run() async throws {
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let courier = NotificationCourier(http: http)
        var nextStallCheck = Date.distantPast
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let now = Date()
                if now >= nextStallCheck {
                    await noteStalls(now: now)
                    nextStallCheck = now.addingTimeInterval(min(60, environment.configuration.stallAfter.seconds / 4))
                }
                await environment.outlet.flush()
                let wake = await pass(courier: courier, now: now)
                let sleep = min(interval.seconds, max(0.05, min(wake ?? .distantFuture, nextStallCheck).timeIntervalSinceNow))
                _ = await cancelWhenGracefulShutdown { await environment.outlet.bell.wait(until: .now + .milliseconds(Int64(sleep * 1000))) }
            }
        } onGracefulShutdown: {}
        try? await http.shutdown()
    }

    /// Delivers what is pending until nothing is due now or `limit` has passed (the end of `run --once`).
    public func drain(within limit: Duration) async {
        let undelivered = (try? await environment.store.undeliveredNotifications()) ?? 0
        guard !environment.configuration.notify.isEmpty || undelivered > 0 else { return }
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let courier = NotificationCourier(http: http)
        let deadline = ContinuousClock.now + limit
        await environment.outlet.flush()
        while ContinuousClock.now < deadline {
            guard let next = await pass(courier: courier, now: Date()) else { break }
            let wait = next.timeIntervalSinceNow
            guard wait <= 0 || ContinuousClock.now + .milliseconds(Int64(wait * 1000)) < deadline else { break }
            if wait > 0 { try? await Task.sleep(for: .milliseconds(Int64(wait * 1000))) }
        }
        try? await http.shutdown()
    }

    /// Delivers what is due; returns when the next retry is due, if any.
    @discardableResult
    func pass(courier: NotificationCourier, now: Date) async -> Date? {
        let store = environment.store
        guard let pending = try? await store.pendingNotifications(limit: 256), !pending.isEmpty else { return nil }
        let targets = environment.configuration.notify
        var due: [String: [(event: OutboxEvent, attempts: Int)]] = [:]
        var next: Date?
        for item in pending {
            let waiting = targets.filter { target in
                guard target.wants(item.event.kind) else { return false }
                return !(item.deliveries[target.key]?.isSettled ?? false)
            }
            if waiting.isEmpty {
                try? await store.finishNotification(item.event.id, at: now)
                continue
            }
            for target in waiting {
                if let at = item.deliveries[target.key]?.nextAt, at > now {
                    next = min(next ?? at, at)
                } else {
                    due[target.key, default: []].append((item.event, item.deliveries[target.key]?.attempts ?? 0))
                }
            }
        }
        guard !due.isEmpty else { return next }
        await withTaskGroup(of: Void.self) { group in
            for target in targets {
                guard let events = due[target.key] else { continue }
                group.addTask { await deliver(events, to: target, courier: courier) }
            }
        }
        // Events every target now has are finished on the next pass, which comes at once.
        return now
    }

    /// One target's due events, oldest first; after a failure the rest wait for its next retry.
    private func deliver(_ events: [(event: OutboxEvent, attempts: Int)], to target: NotificationTarget, courier: NotificationCourier) async {
        let logger = environment.logger
        for (event, tried) in events {
            let failure = await courier.deliver(event, to: target)
            let now = Date()
            let outcome: DeliveryOutcome
            if let failure {
                if let retry = NotificationRetry.next(
                    afterAttempts: tried + 1, now: now, createdAt: event.createdAt, first: environment.configuration.notifyRetry.seconds) {
                    outcome = .failed(failure, retryAt: retry)
                    logger.warning("notify \(target.label): \(event.kind) \(event.id) not delivered (\(failure)); trying again in \(String(format: "%.1f", retry.timeIntervalSince(now))) s")
                } else {
                    outcome = .gaveUp(failure)
                    logger.error("notify \(target.label): giving up on \(event.kind) \(event.id) after 24 hours (\(failure))")
                }
            } else {
                outcome = .delivered
                logger.info("notify \(target.label): delivered \(event.kind) \(event.id)")
            }
            try? await environment.store.recordDelivery(eventID: event.id, target: target.key, outcome: outcome, at: now)
            if failure != nil { return }
        }
    }

    /// Jobs at fal whose state has not moved for `stall_after` are told once per state they stall in.
    private func noteStalls(now: Date) async {
        let cutoff = now.addingTimeInterval(-environment.configuration.stallAfter.seconds)
        guard let stalled = try? await environment.store.stalledJobs(unchangedSince: cutoff) else { return }
        for (job, since) in stalled {
            let batch = (try? await environment.store.batch(job.batchId))?.name ?? "?"
            let payload: JSONValue = [
                "batch": .string(batch), "job": .string(job.name), "state": .string(job.state.rawValue), "since": .string(since.iso8601),
                "request_id": job.requestId.map(JSONValue.string) ?? .null, "stall_after_seconds": .int(Int64(environment.configuration.stallAfter.seconds)),
            ]
            let id = "stalled:\(job.id):\(job.state.rawValue):\(Int64(since.timeIntervalSince1970 * 1000))"
            environment.outlet.post(OutboxEvent(id: id, kind: OutboxEvent.stalled, payload: payload, at: now))
        }
    }
}
