import Foundation
import JobStore
import KlingCore
import Runner
import ServiceLifecycle

/// The live line `run --once` draws on a terminal: done/total, running, failed, elapsed, ETA and dollars.
/// Not used when stderr is not a terminal (cron, pipes), where plain log lines are the record. Drawn through
/// the log handler, so a log line never lands on the end of it.
struct ProgressLine: Service {
    let environment: RunnerEnvironment
    let jobs: Set<Int64>
    let started = ContinuousClock.now

    func run() async throws {
        defer { KlingLogHandler.clearLiveLine() }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if let line = try? await render() { KlingLogHandler.showLiveLine(line) }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(500)) }
        }
    }

    /// One frame of the line.
    func render() async throws -> String {
        let tally = try await environment.store.tally(of: jobs)
        func count(_ states: [JobState]) -> Int { states.reduce(0) { $0 + (tally[$1]?.count ?? 0) } }
        let total = count(JobState.allCases)
        let done = count([.completed])
        let failed = count([.failed, .cancelled])
        let running = count(JobState.allCases.filter { !$0.isTerminal && $0 != .queued && $0 != .held })
        let elapsed = (ContinuousClock.now - started).inSeconds
        let finished = done + failed
        let eta = finished > 0 && finished < total ? " ETA \(Self.clock(elapsed / Double(finished) * Double(total - finished)))" : ""
        let spent = USD(micros: tally[.completed]?.costMicros ?? 0)
        return "\(done)/\(total) done, \(running) running, \(failed) failed, \(Self.clock(elapsed)) elapsed\(eta), \(spent)"
    }

    static func clock(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded())
        return whole >= 3600 ? String(format: "%d:%02d:%02d", whole / 3600, whole / 60 % 60, whole % 60) : String(format: "%d:%02d", whole / 60, whole % 60)
    }
}
