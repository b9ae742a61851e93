import Foundation
internal import GRDB

/// What `kling-batch store check` found: problems (the store is damaged or breaks its own rules) and notes.
public struct StoreCheckReport: Sendable {
    public var problems: [String] = []
    public var notes: [String] = []
    public var jobs = 0
    public var ledgerRows = 0

    public var isHealthy: Bool { problems.isEmpty }
}

extension JobStore {
    /// SQLite's `integrity_check`, then our own invariants: every state known, every job at fal or downloading
    /// with what it needs to continue, no request owned twice, every completed job's video on disk as recorded.
    public func check() throws -> StoreCheckReport {
        try read { db in
            var report = StoreCheckReport()
            let integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            if integrity != ["ok"] { report.problems += integrity.map { "SQLite integrity_check: \($0)" } }
            for row in try Row.fetchAll(db, sql: "PRAGMA foreign_key_check") {
                report.problems.append("a \(row[0] as String) row points at a missing \(row[2] as String) row")
            }
            report.jobs = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job") ?? 0
            report.ledgerRows = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM spend") ?? 0
            let known = JobState.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            try problems(db, "SELECT id, name, state FROM job WHERE state NOT IN (\(known))", into: &report) { "is in an unknown state '\($0["state"] as String)'" }
            try problems(db, "SELECT id, name FROM job WHERE state IN ('in_queue', 'in_progress', 'downloading') AND request_id IS NULL", into: &report) { _ in
                "is at fal but has no request id"
            }
            try problems(db, "SELECT id, name FROM job WHERE state = 'downloading' AND video_url IS NULL", into: &report) { _ in
                "is downloading but has no video URL"
            }
            try problems(db, "SELECT id, name FROM job WHERE state = 'completed' AND (video_path IS NULL OR video_sha256 IS NULL)", into: &report) { _ in
                "is completed but records no video"
            }
            try problems(db, "SELECT id, name, request_id FROM job WHERE request_id IN (SELECT request_id FROM job WHERE request_id IS NOT NULL GROUP BY request_id HAVING COUNT(*) > 1)", into: &report) {
                "shares request \($0["request_id"] as String) with another job"
            }
            try problems(db, "SELECT id, name FROM job WHERE reserved_micros < 0 OR estimated_cost_micros < 0", into: &report) { _ in "has a negative amount" }
            try problems(db, "SELECT id, batch_name AS name FROM spend WHERE micros <= 0", into: &report) { _ in "has a ledger row of no amount" }
            for row in try Row.fetchAll(db, sql: "SELECT id, name, video_path, video_bytes FROM job WHERE state = 'completed' AND video_path IS NOT NULL") {
                let path: String = row["video_path"]
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)??.int64Value
                if size == nil {
                    report.notes.append("job \(row["id"] as Int64) (\(row["name"] as String)): its video \(path) is no longer there (moved or deleted after it completed)")
                } else if let bytes = row["video_bytes"] as Int64?, size != bytes {
                    report.problems.append("job \(row["id"] as Int64) (\(row["name"] as String)): its video \(path) has \(size!) bytes, not the \(bytes) recorded")
                }
            }
            let interrupted = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job WHERE state IN ('uploading', 'submitting')") ?? 0
            if interrupted > 0 {
                report.notes.append("\(interrupted) job\(interrupted == 1 ? " was" : "s were") being submitted; with no runner running, the next start recovers \(interrupted == 1 ? "it" : "them") without paying twice")
            }
            return report
        }
    }

    private func problems(_ db: Database, _ sql: String, into report: inout StoreCheckReport, _ describe: (Row) -> String) throws {
        for row in try Row.fetchAll(db, sql: sql) {
            report.problems.append("job \(row["id"] as Int64) (\(row["name"] as String)): \(describe(row))")
        }
    }
}
