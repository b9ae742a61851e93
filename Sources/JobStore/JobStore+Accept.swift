import Foundation
internal import GRDB

/// A validated spec file, ready to be accepted.
public struct NewBatch: Sendable {
    public var stem: String
    public var sourcePath: String
    public var sourceSHA256: String
    /// The day folder its outputs go in (`YYYY-MM-DD`, the local day of acceptance).
    public var day: String
    public var jobs: [NewJob]
    /// The spec's `on_complete:` hook name (or `none`); nil: the runner's setting.
    public var onComplete: String?

    public init(stem: String, sourcePath: String, sourceSHA256: String, day: String, jobs: [NewJob], onComplete: String? = nil) {
        self.onComplete = onComplete
        self.stem = stem
        self.sourcePath = sourcePath
        self.sourceSHA256 = sourceSHA256
        self.day = day
        self.jobs = jobs
    }
}

/// One job of a batch being accepted.
public struct NewJob: Sendable {
    public var name: String
    public var specJSON: String
    public var endpoint: String
    public var durationSeconds: Int
    public var estimatedCostMicros: Int64
    /// Claimed before jobs of a lower priority; first in, first out within one.
    public var priority: JobPriority

    public init(name: String, specJSON: String, endpoint: String, durationSeconds: Int, estimatedCostMicros: Int64, priority: JobPriority = .normal) {
        self.name = name
        self.specJSON = specJSON
        self.endpoint = endpoint
        self.durationSeconds = durationSeconds
        self.estimatedCostMicros = estimatedCostMicros
        self.priority = priority
    }
}

/// What accepting a batch did.
public enum AcceptOutcome: Sendable {
    case accepted(BatchRecord, [JobRecord])
    /// The same content was accepted before; nothing was added.
    case duplicate(BatchRecord)
}

extension JobStore {
    /// Accepts a batch and all its jobs in one transaction: all or nothing.
    ///
    /// The batch's name is its stem, numbered (`-2`, `-3`…) when the name is taken in the store or when
    /// `folderIsTaken` says the output folder already exists on disk.
    public func accept(
        _ batch: NewBatch, allowDuplicate: Bool = false, at now: Date = Date(),
        folderIsTaken: @Sendable (String) -> Bool = { _ in false }
    ) throws -> AcceptOutcome {
        try write { db in try Self.accept(db, batch, allowDuplicate: allowDuplicate, at: now, folderIsTaken: folderIsTaken) }
    }

    /// Accepts several batches in one transaction, each as `accept` would (a later one is a duplicate of an earlier
    /// one with the same content); when one fails, none is accepted.
    ///
    /// One commit per spec file was most of the cost of ingesting a folder of thousands of small files.
    public func acceptAll(
        _ batches: [NewBatch], at now: Date = Date(), folderIsTaken: @Sendable (String) -> Bool = { _ in false }
    ) throws -> [AcceptOutcome] {
        guard !batches.isEmpty else { return [] }
        return try write { db in
            try batches.map { try Self.accept(db, $0, allowDuplicate: false, at: now, folderIsTaken: folderIsTaken) }
        }
    }

    static func accept(
        _ db: Database, _ batch: NewBatch, allowDuplicate: Bool, at now: Date, folderIsTaken: (String) -> Bool
    ) throws -> AcceptOutcome {
        if !allowDuplicate,
            let existing = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT * FROM batch WHERE source_sha256 = ? ORDER BY id LIMIT 1"), arguments: [batch.sourceSHA256]).map(BatchRecord.init(row:))
        {
            return .duplicate(existing)
        }
        var name = batch.stem
        var number = 1
        while true {
            let taken = try Bool.fetchOne(
                db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM batch WHERE name = ? OR output_dir = ?)"),
                arguments: [name, "\(batch.day)/\(name)"]) ?? false
            if !taken && !folderIsTaken("\(batch.day)/\(name)") { break }
            number += 1
            name = "\(batch.stem)-\(number)"
        }
        let record = try Row.fetchOne(
            db.cachedStatement(sql: "INSERT INTO batch (name, source_path, source_sha256, accepted_at, output_dir, on_complete) VALUES (?, ?, ?, ?, ?, ?) RETURNING *"),
            arguments: [name, batch.sourcePath, batch.sourceSHA256, now, "\(batch.day)/\(name)", batch.onComplete]).map(BatchRecord.init(row:))!
        var jobs: [JobRecord] = []
        for job in batch.jobs {
            let inserted = try ColumnReader.fetchOne(
                db.cachedStatement(sql: """
                    INSERT INTO job (batch_id, name, state, spec_json, endpoint, duration_seconds, estimated_cost_micros,
                                     priority, created_at, updated_at)
                    VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?) RETURNING *
                    """),
                arguments: [record.id, job.name, job.specJSON, job.endpoint, job.durationSeconds, job.estimatedCostMicros, job.priority.rawValue, now, now],
                JobRecord.init)!
            try insertEvent(db, jobID: inserted.id, at: now, kind: .state, to: .queued, message: "accepted from \(batch.sourcePath)")
            jobs.append(inserted)
        }
        return .accepted(record, jobs)
    }
}

extension JobStore {
    /// Queues a copy of the batch `name` as a new batch (its jobs' specs again, under a fresh name and folder), each
    /// priced by `price` when given (today's prices: a rerun pays today's); nil when no batch has that name. One
    /// transaction.
    public func rerunBatch(
        named name: String, day: String, at now: Date = Date(), price: (@Sendable (String, Int) -> Int64)? = nil,
        folderIsTaken: @Sendable (String) -> Bool = { _ in false }
    ) throws -> AcceptOutcome? {
        try write { db in
            guard let batch = try Row.fetchOne(db, sql: "SELECT * FROM batch WHERE name = ?", arguments: [name]).map(BatchRecord.init(row:)) else {
                return nil
            }
            let jobs = try Self.fetchJobs(db, "SELECT * FROM job WHERE batch_id = ? ORDER BY id", [batch.id]).map {
                NewJob(name: $0.name, specJSON: $0.specJson, endpoint: $0.endpoint, durationSeconds: $0.durationSeconds,
                       estimatedCostMicros: price?($0.endpoint, $0.durationSeconds) ?? $0.estimatedCostMicros, priority: $0.priority)
            }
            let copy = NewBatch(stem: batch.name, sourcePath: batch.sourcePath, sourceSHA256: batch.sourceSha256, day: day, jobs: jobs, onComplete: batch.onComplete)
            return try Self.accept(db, copy, allowDuplicate: true, at: now, folderIsTaken: folderIsTaken)
        }
    }
}

extension JobStore: JobIntake, JobClaims, JobLifecycle, JobOperations, JobQueries {}
