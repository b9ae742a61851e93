import Foundation
import GRDB

/// Spending limits in micro-dollars; nil means no limit.
public struct SpendLimits: Sendable, Equatable {
    public var perDay: Int64?
    public var perBatch: Int64?

    public init(perDay: Int64? = nil, perBatch: Int64? = nil) {
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

extension JobStore {
    /// Budget days are UTC days, whatever the machine's time zone.
    static let utcCalendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    /// The UTC day a reservation counts against.
    public static func budgetDay(_ date: Date) -> String {
        let parts = utcCalendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year!, parts.month!, parts.day!)
    }

    /// The start of the next UTC day, when a daily budget frees up again.
    public static func nextBudgetDay(after date: Date) -> Date {
        utcCalendar.nextDate(after: date, matching: DateComponents(hour: 0, minute: 0, second: 0), matchingPolicy: .nextTime) ?? date.addingTimeInterval(86400)
    }

    /// A reservation stays committed unless its job ended (failed or cancelled) without any submit that could have
    /// reached fal: being conservative here is what keeps the limit from ever being exceeded.
    static let stillCommitted = """
        reserved_micros > 0 AND (state NOT IN ('failed', 'cancelled') OR EXISTS (
            SELECT 1 FROM attempt WHERE attempt.job_id = job.id AND attempt.outcome NOT IN ('refused', 'not_sent', 'rate_limited')))
        """

    static func committed(_ db: Database, day: String) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(reserved_micros), 0) FROM job WHERE reserved_day = ? AND \(stillCommitted)", arguments: [day]) ?? 0
    }

    static func committed(_ db: Database, batch: Int64) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(reserved_micros), 0) FROM job WHERE batch_id = ? AND \(stillCommitted)", arguments: [batch]) ?? 0
    }

    static func dollars(_ micros: Int64) -> String { String(format: "$%.2f", Double(micros) / 1_000_000) }

    /// Today's and all-time committed spend, and today's completed jobs.
    public func spending(now: Date = Date()) throws -> Spending {
        let day = Self.budgetDay(now)
        return try read { db in
            let today = try Self.committed(db, day: day)
            let total = try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(reserved_micros), 0) FROM job WHERE \(Self.stillCommitted)") ?? 0
            let start = Self.utcCalendar.startOfDay(for: now)
            let completed = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job WHERE state = 'completed' AND finished_at >= ?", arguments: [start]) ?? 0
            return Spending(todayMicros: today, totalMicros: total, completedToday: completed)
        }
    }
}
