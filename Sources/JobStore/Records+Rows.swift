import Foundation
internal import GRDB
import Synchronization

/// Decodes a job from a row by column name: the Codable path costs several times more, and jobs are read on
/// every transition (a profile of a 2,000-job run put it at 7% of the runner's CPU).
extension JobRecord {
    init(row: Row) throws { try self.init(ColumnReader(row)) }

    init(_ row: ColumnReader) throws {
        id = row["id"]
        batchId = row["batch_id"]
        name = row["name"]
        let stateText: String = row["state"]
        guard let parsed = JobState(rawValue: stateText) else {
            throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "unknown job state '\(stateText)' in job \(id)")
        }
        state = parsed
        specJson = row["spec_json"]
        endpoint = row["endpoint"]
        durationSeconds = row["duration_seconds"]
        estimatedCostMicros = row["estimated_cost_micros"]
        attempts = row["attempts"]
        deferrals = row["deferrals"]
        nextAttemptAt = row["next_attempt_at"]
        lastError = row["last_error"]
        requestId = row["request_id"]
        statusUrl = row["status_url"]
        responseUrl = row["response_url"]
        cancelUrl = row["cancel_url"]
        submittedInput = row["submitted_input"]
        submitStartedAt = row["submit_started_at"]
        possibleDuplicate = row["possible_duplicate"]
        statusPolls = row["status_polls"]
        logLines = row["log_lines"]
        resultJson = row["result_json"]
        falMetrics = row["fal_metrics"]
        videoUrl = row["video_url"]
        videoExpectedBytes = row["video_expected_bytes"]
        videoPath = row["video_path"]
        videoBytes = row["video_bytes"]
        videoSha256 = row["video_sha256"]
        manifestPath = row["manifest_path"]
        heldReason = row["held_reason"]
        reservedMicros = row["reserved_micros"]
        reservedDay = row["reserved_day"]
        cancelRequested = row["cancel_requested"]
        falOrigin = row["fal_origin"]
        retryBy = (row["retry_by"] as String?).flatMap(RetryRoute.init(rawValue:))
        resume = (row["resume"] as String?).flatMap(RetryRoute.init(rawValue:))
        lastAttempt = row["last_attempt"]
        submitOptions = row["submit_options"]
        videoDurationMs = row["video_duration_ms"]
        videoWidth = row["video_width"]
        videoHeight = row["video_height"]
        needsReview = row["needs_review"]
        hookCommand = row["hook_command"]
        hookState = row["hook_state"]
        hookAttempts = row["hook_attempts"] ?? 0
        hookNextAt = row["hook_next_at"]
        hookResult = row["hook_result"]
        priority = JobPriority(rawValue: row["priority"]) ?? .normal
        createdAt = row["created_at"]
        submittedAt = row["submitted_at"]
        startedAt = row["started_at"]
        falCompletedAt = row["fal_completed_at"]
        finishedAt = row["finished_at"]
        updatedAt = row["updated_at"]
    }
}

/// Reads a job row's columns by position, found once per column layout. GRDB finds a column by name by lowercasing
/// every column name it passes (about 2,000 lowercasings per job read, 4% of a 100-job run's CPU).
struct ColumnReader {
    let row: Row
    let positions: [String: Int]

    init(_ row: Row) {
        self.row = row
        positions = Self.layout(of: row)
    }

    init(_ row: Row, positions: [String: Int]) {
        self.row = row
        self.positions = positions
    }

    /// Each row of `statement`, decoded where it lies: `Row.fetchAll` copies every row with its column names (a
    /// string allocation per column and row), and a copied row's layout must be checked name by name; the
    /// statement's names are read once and kept with it.
    static func fetchAll<Record>(_ statement: Statement, arguments: StatementArguments, _ decode: (ColumnReader) throws -> Record) throws -> [Record] {
        let positions = layout(named: statement.columnNames)
        let cursor = try Row.fetchCursor(statement, arguments: arguments)
        var records: [Record] = []
        while let row = try cursor.next() { records.append(try decode(ColumnReader(row, positions: positions))) }
        return records
    }

    /// The first row of `statement` (all of an UPDATE … RETURNING runs at its first step), decoded where it lies.
    static func fetchOne<Record>(_ statement: Statement, arguments: StatementArguments, _ decode: (ColumnReader) throws -> Record) throws -> Record? {
        let positions = layout(named: statement.columnNames)
        let cursor = try Row.fetchCursor(statement, arguments: arguments)
        return try withExtendedLifetime(cursor) { try cursor.next().map { try decode(ColumnReader($0, positions: positions)) } }
    }

    subscript<Value: DatabaseValueConvertible>(_ name: String) -> Value {
        positions[name].map { row[$0] } ?? row[name]
    }

    /// The last few layouts seen (`SELECT * FROM job`, `job.*` with a column more, events, attempts, batches), by
    /// their column names.
    private static let layouts = Mutex<[(names: [String], positions: [String: Int])]>([])

    private static func layout(of row: Row) -> [String: Int] {
        let known = layouts.withLock { layouts in
            layouts.first { $0.names.count == row.count && $0.names.elementsEqual(row.columnNames) }?.positions
        }
        return known ?? remember(Array(row.columnNames))
    }

    /// The positions of `names` (a statement's: the same strings every time, so comparing them is cheap).
    private static func layout(named names: [String]) -> [String: Int] {
        let known = layouts.withLock { layouts in layouts.first { $0.names == names }?.positions }
        return known ?? remember(names)
    }

    private static func remember(_ names: [String]) -> [String: Int] {
        var positions: [String: Int] = [:]
        for (index, name) in names.enumerated() where positions[name] == nil { positions[name] = index }
        layouts.withLock { layouts in
            if layouts.count >= 8 { layouts.removeFirst() }
            layouts.append((names, positions))
        }
        return positions
    }
}

/// The history a manifest is written from (events, attempts, the batch) is read for every finished job, by column
/// as the job is: through Codable these decodes were 4% of the runner's CPU in a 100-job run (perf).
extension JobEvent {
    init(row: Row) throws {
        let row = ColumnReader(row)
        id = row["id"]
        jobId = row["job_id"]
        at = row["at"]
        kind = try parsed(row["kind"], as: Kind.self, in: "event \(id)")
        fromState = try parsed(row["from_state"], as: JobState.self, in: "event \(id)")
        toState = try parsed(row["to_state"], as: JobState.self, in: "event \(id)")
        message = row["message"]
        byOperator = row["by_operator"]
    }
}

extension AttemptRecord {
    init(row: Row) throws {
        let row = ColumnReader(row)
        id = row["id"]
        jobId = row["job_id"]
        number = row["number"]
        startedAt = row["started_at"]
        endedAt = row["ended_at"]
        requestId = row["request_id"]
        outcome = try parsed(row["outcome"], as: AttemptOutcome.self, in: "attempt \(id)")
        counted = row["counted"]
        errorReason = row["error_reason"]
        errorMessage = row["error_message"]
        httpStatus = row["http_status"]
        attemptedBy = row["attempted_by"]
    }
}

extension BatchRecord {
    init(row: Row) throws {
        let row = ColumnReader(row)
        id = row["id"]
        name = row["name"]
        sourcePath = row["source_path"]
        sourceSha256 = row["source_sha256"]
        acceptedAt = row["accepted_at"]
        outputDir = row["output_dir"]
        onComplete = row["on_complete"]
    }
}

/// A stored enum's value; a text this version does not know means a damaged (or newer) store, said as such.
private func parsed<Value: RawRepresentable<String>>(_ text: String, as: Value.Type, in what: String) throws -> Value {
    guard let value = Value(rawValue: text) else { throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "unknown value '\(text)' in \(what)") }
    return value
}

private func parsed<Value: RawRepresentable<String>>(_ text: String?, as: Value.Type, in what: String) throws -> Value? {
    try text.map { try parsed($0, as: Value.self, in: what) }
}

/// Spend records are read for reports only: GRDB decodes them by their Codable conformance, columns in snake case.
/// The conformance to GRDB's protocol stays inside this module (`Decoded`), so no GRDB type reaches the public API.
protocol RowDecodable: Decodable {}

extension RowDecodable {
    init(row: Row) throws { self = try Decoded<Self>(row: row).record }
}

/// GRDB's `FetchableRecord` for any `Decodable` record, without the record itself conforming in public.
struct Decoded<Record: Decodable>: FetchableRecord, Decodable {
    static var databaseColumnDecodingStrategy: DatabaseColumnDecodingStrategy { .convertFromSnakeCase }
    let record: Record

    init(from decoder: any Decoder) throws { record = try Record(from: decoder) }
}

extension SpendRecord: RowDecodable {}

extension JobStore {
    /// One job by id, inside a transaction.
    static func fetchJob(_ db: Database, _ id: Int64) throws -> JobRecord? {
        try ColumnReader.fetchOne(db.cachedStatement(sql: "SELECT * FROM job WHERE id = ?"), arguments: [id], JobRecord.init)
    }

    /// Jobs by a query.
    static func fetchJobs(_ db: Database, _ sql: String, _ arguments: StatementArguments = []) throws -> [JobRecord] {
        try ColumnReader.fetchAll(db.cachedStatement(sql: sql), arguments: arguments, JobRecord.init)
    }
}
