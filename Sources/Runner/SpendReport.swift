import Foundation
import JobStore
import KlingCore

/// Money committed at fal, grouped, from the spend ledger (which `purge` never deletes): what `report` prints,
/// and what adds up, to the micro-dollar, to the `cost` of the same jobs' manifests.
public struct SpendReport: Sendable, Equatable {
    /// How rows are grouped.
    public enum Grouping: String, Sendable, CaseIterable {
        case day, batch, endpoint, state
    }

    /// One group's (or the totals') figures.
    public struct Line: Sendable, Equatable {
        public var key: String
        /// Distinct jobs with money in this group.
        public var jobs = 0
        /// Submissions that may have been paid.
        public var submissions = 0
        /// Seconds of video those submissions asked for.
        public var seconds = 0
        public var committed = USD.zero
        public var completed = USD.zero
        /// Paid and then failed at fal (or the video could not be fetched).
        public var failed = USD.zero
        /// Cancelled at fal after it was submitted.
        public var cancelled = USD.zero
        /// Still running at fal, or from before outcomes were recorded.
        public var open = USD.zero
        /// Submissions whose answer was lost and were submitted again: fal may have run both.
        public var possibleDuplicates = 0
    }

    public var grouping: Grouping
    public var lines: [Line]
    public var totals: Line

    /// Groups `rows` (already limited to the dates asked for) by `grouping`, in key order.
    public init(rows: [SpendRecord], by grouping: Grouping) {
        self.grouping = grouping
        var groups: [String: [SpendRecord]] = [:]
        let reused = Self.reusedBatchNames(rows)
        for row in rows { groups[Self.key(of: row, by: grouping, reused: reused), default: []].append(row) }
        lines = groups.keys.sorted().map { Self.line($0, groups[$0]!) }
        totals = Self.line(Self.totalKey, rows)
    }

    /// The totals' key: parentheses never occur in a day, a batch name, an endpoint id or a state, so a spreadsheet
    /// row named this way is never a group's.
    public static let totalKey = "(total)"

    /// The group a row falls in. A batch name used again after its first batch was purged is told apart by id.
    static func key(of row: SpendRecord, by grouping: Grouping, reused: Set<String> = []) -> String {
        switch grouping {
        case .day: row.day
        case .batch: reused.contains(row.batchName) ? "\(row.batchName)#\(row.batchId)" : row.batchName
        case .endpoint: row.endpoint
        case .state: row.outcome?.label ?? "open"
        }
    }

    /// Batch names that more than one batch (id) has had.
    static func reusedBatchNames(_ rows: [SpendRecord]) -> Set<String> {
        var ids: [String: Set<Int64>] = [:]
        for row in rows { ids[row.batchName, default: []].insert(row.batchId) }
        return Set(ids.filter { $0.value.count > 1 }.keys)
    }

    /// One group's sums.
    static func line(_ key: String, _ rows: [SpendRecord]) -> Line {
        var line = Line(key: key)
        line.jobs = Set(rows.map { $0.jobId.map(String.init) ?? "\($0.batchId)/\($0.jobName)" }).count
        line.submissions = rows.count
        for row in rows {
            let amount = USD(micros: row.micros)
            line.seconds += row.seconds
            line.committed += amount
            switch row.outcome {
            case .completed?: line.completed += amount
            case .failed?: line.failed += amount
            case .cancelled?: line.cancelled += amount
            default: line.open += amount
            }
            if row.possibleDuplicate { line.possibleDuplicates += 1 }
        }
        return line
    }
}

/// The dates `report` takes: a UTC day (`2026-12-01`) or an ISO 8601 time, both read by KlingCore's one reader.
public enum ReportDate {
    /// The instant `text` starts at; for `--until`, a bare day means the end of that day (it is included).
    public static func parse(_ text: String, endOfDay: Bool = false) -> Date? {
        guard text.wholeMatch(of: /[0-9]{4}-[0-9]{2}-[0-9]{2}/) != nil else { return Date(iso8601: text) }
        guard let day = Date(iso8601: text + "T00:00:00Z"), BudgetDay.of(day) == text else { return nil }
        return endOfDay ? BudgetDay.next(after: day) : day
    }
}
