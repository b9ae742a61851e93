import Foundation
import JobStore
import KlingCore
import KlingSpec

/// What a `run --once` did.
public struct RunReport: Sendable {
    /// A spec file and the batch it became.
    public struct FileOutcome: Sendable {
        public var file: String
        public var batch: String
        public var jobs: Int
    }

    public var accepted: [FileOutcome] = []
    public var duplicates: [FileOutcome] = []
    public var rejected: [SpecReport] = []
    /// Every job this run worked on, as it ended.
    public var jobs: [JobRecord] = []
    public var batchNames: [Int64: String] = [:]
    public var abortReason: String?
    /// Unfinished jobs left alone because their request went to another origin, by that origin.
    public var foreign: [String: [Int64]] = [:]
    public var elapsed: Duration = .zero
    public var pricePerSecond = USD.klingO1PerSecond

    public var completed: [JobRecord] { jobs.filter { $0.state == .completed } }
    public var failed: [JobRecord] { jobs.filter { $0.state == .failed } }
    public var unfinished: [JobRecord] { jobs.filter { !$0.state.isTerminal } }
    public var secondsOfVideo: Int { completed.reduce(0) { $0 + $1.durationSeconds } }
    public var cost: USD { pricePerSecond * secondsOfVideo }

    /// Exit 0 only when every spec was valid and every job completed.
    public var succeeded: Bool { rejected.isEmpty && abortReason == nil && jobs.allSatisfy { $0.state == .completed } }

    /// The summary printed at the end of a run.
    public var summary: String {
        var lines: [String] = []
        let total = jobs.count
        lines.append("\(completed.count) of \(total) job\(total == 1 ? "" : "s") completed, \(failed.count) failed"
            + (unfinished.isEmpty ? "" : ", \(unfinished.count) unfinished")
            + (jobs.filter { $0.state == .cancelled }.isEmpty ? "" : ", \(jobs.filter { $0.state == .cancelled }.count) cancelled")
            + "; \(secondsOfVideo) s of video, \(cost) (estimated); took \(elapsed.formattedSeconds)")
        for job in failed {
            lines.append("  failed \(batchNames[job.batchId] ?? "?")/\(job.name): \(job.lastError ?? "unknown error")")
        }
        for job in jobs where job.state == .held {
            lines.append("  held \(batchNames[job.batchId] ?? "?")/\(job.name): \(job.heldReason ?? "waiting for budget") (raise the budget and run again)")
        }
        for report in rejected { lines.append("  rejected \(report.file): \(report.errors.count) problem\(report.errors.count == 1 ? "" : "s")") }
        for (origin, ids) in foreign.sorted(by: { $0.key < $1.key }) {
            lines.append("  left untouched: \(ids.count) job\(ids.count == 1 ? "" : "s") whose request went to \(origin) (run against it with --fal-url \(origin), "
                + "or `kling-batch store abandon \(origin)`)")
        }
        if let abortReason { lines.append("stopped early: \(abortReason)") }
        return lines.joined(separator: "\n")
    }
}
