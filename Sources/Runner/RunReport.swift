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
    /// Where the drop folder's rejected files went, by the path they were read from.
    public var movedAside: [String: String] = [:]
    /// Drop-folder files left for the next run: still being written, or the move failed.
    public var leftInPlace: [String] = []
    /// Drop-folder files the store could not take (a full disk, say): left in place, and an error to report.
    public var notTaken: [String] = []
    /// Every job this run worked on, as it ended.
    public var jobs: [JobRecord] = []
    public var batchNames: [Int64: String] = [:]
    public var abortReason: String?
    /// Whether the run gave up because fal did not answer (its jobs are left for the next run).
    public var gaveUpOnFal = false
    /// Unfinished jobs left alone because their request went to another origin, by that origin.
    public var foreign: [String: [Int64]] = [:]
    public var elapsed: Duration = .zero

    public var completed: [JobRecord] { jobs.filter { $0.state == .completed } }
    public var failed: [JobRecord] { jobs.filter { $0.state == .failed } }
    public var unfinished: [JobRecord] { jobs.filter { !$0.state.isTerminal } }
    public var secondsOfVideo: Int { completed.reduce(0) { $0 + $1.durationSeconds } }
    /// What the completed jobs cost, each at its own endpoint's price as accepted.
    public var cost: USD { USD(micros: completed.reduce(0) { $0 + $1.estimatedCostMicros }) }

    /// Exit 0 only when every spec was valid and every job completed.
    public var succeeded: Bool { rejected.isEmpty && abortReason == nil && jobs.allSatisfy { $0.state == .completed } }

    /// What the run's exit code says, for cron: the first that applies of fal unreachable, a job failed (or was
    /// left unfinished), a spec rejected; else done. Jobs held for the budget wait for it and are not a failure.
    public var exit: RunExit {
        if gaveUpOnFal { return .falUnreachable }
        if abortReason != nil || !failed.isEmpty || !notTaken.isEmpty || jobs.contains(where: { !$0.state.isTerminal && $0.state != .held }) { return .jobFailed }
        if !rejected.isEmpty { return .specRejected }
        return .done
    }

    /// Completed jobs whose video differs from what was paid for (`list --flagged`).
    public var needingReview: [JobRecord] { completed.filter { $0.needsReview != nil } }

    /// Whether there is anything to tell: `--quiet` prints the summary only then (cron mails only then). A video
    /// that needs a look is news, though the run did its job (exit 0).
    public var isNews: Bool { exit != .done || !needingReview.isEmpty }


    /// The summary printed at the end of a run.
    public var summary: String {
        var lines: [String] = []
        let total = jobs.count
        lines.append("\(completed.count) of \(total) job\(total == 1 ? "" : "s") completed, \(failed.count) failed"
            + (unfinished.isEmpty ? "" : ", \(unfinished.count) unfinished")
            + (jobs.filter { $0.state == .cancelled }.isEmpty ? "" : ", \(jobs.filter { $0.state == .cancelled }.count) cancelled")
            + "; \(secondsOfVideo) s of video, \(cost) (estimated); took \(elapsed.formattedSeconds)")
        for job in needingReview {
            lines.append("  needs review \(batchNames[job.batchId] ?? "?")/\(job.name): \(job.needsReview ?? "") (kept; `kling-batch list --flagged`)")
        }
        for job in failed {
            lines.append("  failed \(batchNames[job.batchId] ?? "?")/\(job.name): \(job.lastError ?? "unknown error")")
        }
        for job in jobs where job.state == .held {
            lines.append("  held \(batchNames[job.batchId] ?? "?")/\(job.name): \(job.heldReason ?? "waiting for budget") (raise the budget and run again)")
        }
        for report in rejected {
            let moved = movedAside[report.file].map { "; moved to \($0), the reasons in \($0).errors.txt" } ?? ""
            lines.append("  rejected \(report.file): \(report.errors.count) problem\(report.errors.count == 1 ? "" : "s")\(moved)")
        }
        for file in leftInPlace { lines.append("  left in place for the next run: \(file)") }
        for file in notTaken { lines.append("  not taken, left in place for the next run: \(file)") }
        for (origin, ids) in foreign.sorted(by: { $0.key < $1.key }) {
            lines.append("  left untouched: \(ids.count) job\(ids.count == 1 ? "" : "s") whose request went to \(origin) (run against it with --fal-url \(origin), "
                + "or `kling-batch store abandon \(origin)`)")
        }
        if let abortReason { lines.append("stopped early: \(abortReason)") }
        return lines.joined(separator: "\n")
    }
}

/// `run --once`'s exit codes, documented in its `--help`, the man page and the README.
public enum RunExit: Int32, Sendable, CaseIterable {
    /// Every job done (or held for the budget), every spec accepted.
    case done = 0
    /// A job failed, or was left unfinished (another origin, a refused key).
    case jobFailed = 1
    /// A spec file was rejected (a drop folder's is moved to rejected/, so the next run is quiet).
    case specRejected = 2
    /// Another kling-batch holds the state folder.
    case locked = 3
    /// The store or the drop folder cannot be used safely; the message says what to do.
    case unsafe = 4
    /// fal did not answer for `give_up_after`; the jobs are left for the next run.
    case falUnreachable = 5
    /// A usage error (ArgumentParser's own).
    case usage = 64

    /// One line per code, for `--help`, the man page and the README.
    public static var table: String {
        allCases.map { "  \($0.rawValue)  \($0.meaning)" }.joined(separator: "\n")
    }

    public var meaning: String {
        switch self {
        case .done: "every job done (held ones wait for the budget); every spec accepted"
        case .jobFailed: "a job failed or is unfinished, or the store refused a spec file"
        case .specRejected: "a spec was rejected (from the jobs folder: moved to rejected/)"
        case .locked: "another kling-batch holds the state folder or the jobs folder"
        case .unsafe: "the store or the jobs folder is unsafe to use; see the message"
        case .falUnreachable: "fal did not answer for give_up_after; jobs wait for the next run"
        case .usage: "a usage error"
        }
    }
}
