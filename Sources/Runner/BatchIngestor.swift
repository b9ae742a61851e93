import Foundation
import JobStore
import KlingCore
import KlingSpec

/// Turns a spec file into an accepted batch: validated as a whole, stored in one transaction, never twice for
/// the same content unless asked.
public struct BatchIngestor: Sendable {
    public let store: any JobQueue
    public let validator: SpecValidator
    public let layout: OutputLayout
    public let pricePerSecond: USD

    public init(store: any JobQueue, validator: SpecValidator, layout: OutputLayout, pricePerSecond: USD) {
        self.store = store
        self.validator = validator
        self.layout = layout
        self.pricePerSecond = pricePerSecond
    }

    /// One encoder for every spec stored: making one per file showed in ingest profiles. Never reconfigured after this.
    private static let specEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    /// What became of a file.
    public enum Outcome: Sendable {
        case accepted(BatchRecord, [JobRecord], warnings: [SpecDiagnostic])
        /// The same content was accepted before (as this batch).
        case duplicate(BatchRecord)
        case rejected(SpecReport)
    }

    /// Validates and (when valid) accepts the file at `path`.
    public func ingest(file path: String, allowDuplicate: Bool = false, now: Date = Date()) async throws -> Outcome {
        try await ingest(SpecFile(path: path, contents: nil), allowDuplicate: allowDuplicate, now: now)
    }

    /// Validates and (when valid) accepts a spec file already read from its folder (or read now by its path).
    public func ingest(_ file: SpecFile, allowDuplicate: Bool = false, now: Date = Date()) async throws -> Outcome {
        let report = validator.validate(file)
        guard report.isValid, let sha = report.sha256 else { return .rejected(report) }
        return try await accept(report, sha256: sha, allowDuplicate: allowDuplicate, now: now)
    }

    /// Queues the batch `name` again (its jobs' specs, under a fresh name and folder); nil when there is none.
    public func rerun(batchNamed name: String, now: Date = Date()) async throws -> Outcome? {
        let layout = self.layout
        guard let outcome = try await store.rerunBatch(named: name, day: OutputLayout.day(of: now), at: now, folderIsTaken: { layout.isTaken($0) }) else {
            return nil
        }
        switch outcome {
        case .accepted(let record, let jobs): return .accepted(record, jobs, warnings: [])
        case .duplicate(let existing): return .duplicate(existing)
        }
    }

    /// Accepts an already validated report.
    public func accept(_ report: SpecReport, sha256: String, allowDuplicate: Bool = false, now: Date = Date()) async throws -> Outcome {
        let layout = self.layout
        let outcome = try await store.accept(
            try newBatch(report, sha256: sha256, now: now), allowDuplicate: allowDuplicate, at: now, folderIsTaken: { layout.isTaken($0) })
        return Self.outcome(outcome, report)
    }

    /// Accepts validated files (each report with its content's SHA-256) in one transaction; outcomes are in the
    /// same order. When the store refuses, none is accepted.
    public func acceptAll(_ files: [(report: SpecReport, sha256: String)], now: Date = Date()) async throws -> [Outcome] {
        let batches = try files.map { try newBatch($0.report, sha256: $0.sha256, now: now) }
        let layout = self.layout
        let outcomes = try await store.acceptAll(batches, at: now, folderIsTaken: { layout.isTaken($0) })
        return zip(outcomes, files).map { Self.outcome($0, $1.report) }
    }

    private func newBatch(_ report: SpecReport, sha256: String, now: Date) throws -> NewBatch {
        let jobs = try report.jobs.map { job in
            NewJob(
                name: job.name, specJSON: String(decoding: try Self.specEncoder.encode(job), as: UTF8.self), endpoint: job.endpoint,
                durationSeconds: job.duration, estimatedCostMicros: job.estimatedCost(rate: pricePerSecond).micros)
        }
        return NewBatch(stem: report.batchName, sourcePath: report.absolutePath, sourceSHA256: sha256, day: OutputLayout.day(of: now), jobs: jobs)
    }

    private static func outcome(_ outcome: AcceptOutcome, _ report: SpecReport) -> Outcome {
        switch outcome {
        case .accepted(let record, let jobs): return .accepted(record, jobs, warnings: report.warnings)
        case .duplicate(let existing): return .duplicate(existing)
        }
    }
}
