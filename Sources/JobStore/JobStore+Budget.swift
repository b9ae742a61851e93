import Foundation
import KlingCore
internal import GRDB

/// How much may be committed to fal, from the settings to the claim that enforces it; nil means no limit.
public struct SpendLimits: Sendable, Equatable {
    public var perDay: USD?
    public var perBatch: USD?

    public init(perDay: USD? = nil, perBatch: USD? = nil) {
        self.perDay = perDay
        self.perBatch = perBatch
    }
}

/// What has been committed to fal, for `status` and the systemd status line.
public struct Spending: Sendable, Equatable {
    /// Committed today (UTC), in micro-dollars.
    public var todayMicros: Int64
    /// Committed over the store's whole history.
    public var totalMicros: Int64
    /// Jobs completed today (UTC).
    public var completedToday: Int
}

/// Budget days are UTC days, whatever the machine's time zone: every backend and the runner count them alike.
public enum BudgetDay {
    /// The UTC day (`YYYY-MM-DD`) a reservation or a ledger row counts against.
    public static func of(_ date: Date) -> String { JobStore.budgetDay(date) }

    /// The start of the next UTC day, when a daily budget frees up again.
    public static func next(after date: Date) -> Date { JobStore.nextBudgetDay(after: date) }
}

extension JobStore {
    /// Budget days are UTC days, whatever the machine's time zone.
    static let utcCalendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    /// The UTC day a reservation counts against.
    static func budgetDay(_ date: Date) -> String {
        let parts = utcCalendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year!, parts.month!, parts.day!)
    }

    /// The start of the next UTC day, when a daily budget frees up again.
    static func nextBudgetDay(after date: Date) -> Date {
        utcCalendar.nextDate(after: date, matching: DateComponents(hour: 0, minute: 0, second: 0), matchingPolicy: .nextTime) ?? date.addingTimeInterval(86400)
    }

    /// A job's reservation is open while it may still be submitted: once a submit may have reached fal it moves to
    /// the ledger, and a job that ended without reaching fal (failed, cancelled) holds nothing.
    static let openReservation = "reserved_micros > 0 AND state IN ('queued', 'held', 'uploading', 'submitting')"

    /// Everything committed against `day`: what was sent that day, plus the reservations of jobs about to be sent.
    static func committed(_ db: Database, day: String) throws -> Int64 {
        let sent = try Int64.fetchOne(db.cachedStatement(sql: "SELECT COALESCE(SUM(micros), 0) FROM spend WHERE day = ?"), arguments: [day]) ?? 0
        let reserved = try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT COALESCE(SUM(reserved_micros), 0) FROM job WHERE reserved_day = ? AND \(openReservation)"), arguments: [day]) ?? 0
        return sent + reserved
    }

    /// Everything committed for a batch, the same way.
    static func committed(_ db: Database, batch: Int64) throws -> Int64 {
        let sent = try Int64.fetchOne(db.cachedStatement(sql: "SELECT COALESCE(SUM(micros), 0) FROM spend WHERE batch_id = ?"), arguments: [batch]) ?? 0
        let reserved = try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT COALESCE(SUM(reserved_micros), 0) FROM job WHERE batch_id = ? AND \(openReservation)"), arguments: [batch]) ?? 0
        return sent + reserved
    }

    /// A submit that may have reached fal (accepted, or its answer lost) goes into the ledger, once per attempt,
    /// and the job's open reservation is released into it. `purge` never deletes ledger rows, so budgets and
    /// reports keep counting money that was sent for jobs that are forgotten.
    /// The caller's transition releases the job's reservation in the same UPDATE (`releaseReservation`).
    static func recordSpend(_ db: Database, jobID: Int64, kind: SpendKind, requestID: String?, at now: Date) throws {
        try db.cachedStatement(sql: """
            INSERT INTO spend (job_id, batch_id, batch_name, job_name, attempt, request_id, endpoint, origin, micros, seconds, day, at, kind)
            SELECT job.id, job.batch_id, batch.name, job.name, COALESCE((SELECT MAX(number) FROM attempt WHERE job_id = job.id), 1), ?,
                   job.endpoint, job.fal_origin, job.estimated_cost_micros, job.duration_seconds, ?, ?, ?
            FROM job JOIN batch ON batch.id = job.batch_id WHERE job.id = ?
            """).execute(arguments: [requestID, budgetDay(now), now, kind.rawValue, jobID])
    }

    /// The fields that release a job's reservation once its submit is in the ledger.
    static let releaseReservation: [JobField] = [.reservedMicros(0), .reservedDay(nil)]

    /// A lost submit found in fal's listing: its ledger row (counted when the answer was lost) becomes accepted.
    static func confirmSpend(_ db: Database, jobID: Int64, requestID: String, at now: Date) throws {
        try db.cachedStatement(sql: """
            UPDATE spend SET kind = 'accepted', request_id = ?
            WHERE id = (SELECT MAX(id) FROM spend WHERE job_id = ? AND kind = 'unknown')
            """).execute(arguments: [requestID, jobID])
        if db.changesCount == 0 { try recordSpend(db, jobID: jobID, kind: .accepted, requestID: requestID, at: now) }
    }

    static func dollars(_ micros: Int64) -> String { String(format: "$%.2f", Double(micros) / 1_000_000) }

    /// Today's and all-time committed spend, and today's completed jobs.
    public func spending(now: Date = Date()) throws -> Spending {
        let day = Self.budgetDay(now)
        return try read { db in
            let today = try Self.committed(db, day: day)
            let sent = try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(micros), 0) FROM spend") ?? 0
            let reserved = try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(reserved_micros), 0) FROM job WHERE \(Self.openReservation)") ?? 0
            let start = Self.utcCalendar.startOfDay(for: now)
            let completed = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job WHERE state = 'completed' AND finished_at >= ?", arguments: [start]) ?? 0
            return Spending(todayMicros: today, totalMicros: sent + reserved, completedToday: completed)
        }
    }

    /// Every ledger row, oldest first: what was sent to fal, including jobs purged since.
    public func ledger() throws -> [SpendRecord] {
        try read { try Row.fetchAll($0, sql: "SELECT * FROM spend ORDER BY id").map(SpendRecord.init(row:)) }
    }
}

/// Whether a ledger row is a submit fal confirmed, or one whose answer was lost (counted: it may have been paid).
public enum SpendKind: String, Sendable, Codable {
    case accepted
    case unknown
}

/// One submission that may have cost money, kept after its job is purged.
public struct SpendRecord: Sendable, Codable, Hashable {
    public var id: Int64
    public var jobId: Int64?
    public var batchId: Int64
    public var batchName: String
    public var jobName: String
    public var attempt: Int
    public var requestId: String?
    public var endpoint: String
    public var origin: String?
    public var micros: Int64
    /// Seconds of video asked for.
    public var seconds: Int
    /// The UTC day it counts against.
    public var day: String
    public var at: Date
    public var kind: SpendKind
    /// How the request ended: completed, failed or cancelled; nil while it runs (or for rows older than v5 whose
    /// job was purged before it could be told).
    public var outcome: JobState?
    /// A lost submit given up on: fal may have run it as well as the submission that followed.
    public var possibleDuplicate: Bool
}
