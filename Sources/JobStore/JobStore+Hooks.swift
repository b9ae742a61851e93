import Foundation
internal import GRDB

/// Completed jobs' on_complete hooks: due when the job completes (in the same transaction), run by the runner's
/// hook service, and retried until they succeed or run out of attempts. A hook never moves its job: the job stays
/// completed whatever the hook does.
public protocol CompletionHooks: Sendable {
    /// Completed jobs whose hook is due now, oldest first.
    func dueHooks(limit: Int, now: Date) async throws -> [JobRecord]
    /// When the next pending hook is due, if any is pending.
    func nextHookDue() async throws -> Date?
    /// Records one run of a job's hook (its result as JSON) and what comes next, with an event. One transaction.
    func recordHookRun(_ id: Int64, result: String, outcome: HookRunOutcome, message: String, at now: Date) async throws
    /// Jobs by hook state (pending, done, failed).
    func hookCounts() async throws -> [String: Int]
}

/// What follows one run of a hook.
public enum HookRunOutcome: Sendable, Equatable {
    case done
    case retry(at: Date)
    /// Out of attempts: recorded as failed, the job still completed.
    case gaveUp
}

extension JobStore: CompletionHooks {
    public func dueHooks(limit: Int, now: Date) throws -> [JobRecord] {
        try read { db in
            try Self.fetchJobs(db, """
                SELECT * FROM job WHERE hook_state = 'pending' AND (hook_next_at IS NULL OR hook_next_at <= ?)
                ORDER BY hook_next_at IS NOT NULL, hook_next_at, id LIMIT ?
                """, [now, limit])
        }
    }

    public func nextHookDue() throws -> Date? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT hook_next_at FROM job WHERE hook_state = 'pending' ORDER BY hook_next_at IS NOT NULL, hook_next_at LIMIT 1")
                .map { ($0["hook_next_at"] as Date?) ?? .distantPast }
        }
    }

    public func recordHookRun(_ id: Int64, result: String, outcome: HookRunOutcome, message: String, at now: Date) throws {
        try write { db in
            let (state, next): (String, Date?) = switch outcome {
            case .done: ("done", nil)
            case .retry(let at): ("pending", at)
            case .gaveUp: ("failed", nil)
            }
            try db.execute(
                sql: "UPDATE job SET hook_state = ?, hook_next_at = ?, hook_attempts = hook_attempts + 1, hook_result = ?, updated_at = ? WHERE id = ? AND state = 'completed'",
                arguments: [state, next, result, now, id])
            try Self.insertEvent(db, jobID: id, at: now, kind: outcome == .done ? .note : .error, message: message)
        }
    }

    public func hookCounts() throws -> [String: Int] {
        try read { db in
            Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT hook_state, COUNT(*) AS n FROM job WHERE hook_state IS NOT NULL GROUP BY hook_state")
                .map { ($0["hook_state"] as String, $0["n"] as Int) })
        }
    }
}
