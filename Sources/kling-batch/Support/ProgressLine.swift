import Foundation
import JobStore
import KlingCore
import Runner
import ServiceLifecycle

/// The live line `run --once` draws on a terminal: done/total, running, failed, elapsed, ETA and dollars.
/// Not used when stderr is not a terminal (cron, pipes), where plain log lines are the record.
struct ProgressLine: Service {
    let environment: RunnerEnvironment
    let jobs: Set<Int64>
    let started = ContinuousClock.now

    func run() async throws {
        defer { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if let line = try? render() { FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8)) }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(500)) }
        }
    }

    /// One frame of the line.
    func render() throws -> String {
        let records = try environment.store.jobs(in: JobState.allCases).filter { jobs.contains($0.id) }
        let total = records.count
        let done = records.filter { $0.state == .completed }.count
        let failed = records.filter { $0.state == .failed || $0.state == .cancelled }.count
        let running = records.filter { !$0.state.isTerminal && $0.state != .queued && $0.state != .held }.count
        let elapsed = (ContinuousClock.now - started).inSeconds
        let finished = done + failed
        let eta = finished > 0 && finished < total ? " ETA \(Self.clock(elapsed / Double(finished) * Double(total - finished)))" : ""
        let spent = USD(micros: records.filter { $0.state == .completed }.reduce(0) { $0 + $1.estimatedCostMicros })
        return "\(done)/\(total) done, \(running) running, \(failed) failed, \(Self.clock(elapsed)) elapsed\(eta), \(spent)"
    }

    static func clock(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded())
        return whole >= 3600 ? String(format: "%d:%02d:%02d", whole / 3600, whole / 60 % 60, whole % 60) : String(format: "%d:%02d", whole / 60, whole % 60)
    }
}
