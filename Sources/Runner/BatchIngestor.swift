import Foundation
import JobStore
import KlingCore
import KlingSpec
import Logging
import Synchronization

/// Turns a spec file into an accepted batch: validated as a whole, stored in one transaction, never twice for
/// the same content unless asked.
public struct BatchIngestor: Sendable {
    public let store: any JobQueue
    public let validator: SpecValidator
    public let layout: OutputLayout
    /// The prices as they are now: a daemon's SIGHUP may change them between two files.
    public let prices: @Sendable () -> PriceList
    private let unknownPrices: UnknownPriceWarning

    public init(store: any JobQueue, validator: SpecValidator, layout: OutputLayout, prices: @escaping @Sendable () -> PriceList, logger: Logger? = nil) {
        self.store = store
        self.validator = validator
        self.layout = layout
        self.prices = prices
        self.unknownPrices = UnknownPriceWarning(logger: logger)
    }

    public init(store: any JobQueue, validator: SpecValidator, layout: OutputLayout, prices: PriceList, logger: Logger? = nil) {
        self.init(store: store, validator: validator, layout: layout, prices: { prices }, logger: logger)
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
        let prices = self.prices()
        let price: @Sendable (String, Int) -> Int64 = { endpoint, seconds in prices.cost(endpoint: endpoint, seconds: seconds).micros }
        guard let outcome = try await store.rerunBatch(named: name, day: OutputLayout.day(of: now), at: now, price: price, folderIsTaken: { layout.isTaken($0) }) else {
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
        let prices = self.prices()
        let jobs = try report.jobs.map { job in
            unknownPrices.check(job.endpoint, in: prices)
            return NewJob(
                name: job.name, specJSON: String(decoding: try Self.specEncoder.encode(job), as: UTF8.self), endpoint: job.endpoint,
                durationSeconds: job.duration, estimatedCostMicros: prices.cost(endpoint: job.endpoint, seconds: job.duration).micros,
                priority: job.priority.flatMap(JobPriority.init(label:)) ?? .normal)
        }
        return NewBatch(
            stem: report.batchName, sourcePath: report.absolutePath, sourceSHA256: sha256, day: OutputLayout.day(of: now), jobs: jobs,
            onComplete: report.onComplete)
    }

    private static func outcome(_ outcome: AcceptOutcome, _ report: SpecReport) -> Outcome {
        switch outcome {
        case .accepted(let record, let jobs): return .accepted(record, jobs, warnings: report.warnings)
        case .duplicate(let existing): return .duplicate(existing)
        }
    }
}

/// Says once per run, per endpoint, that an endpoint has no price and is counted at the highest known one: once,
/// because a batch of 1,000 such jobs should not log 1,000 warnings.
final class UnknownPriceWarning: Sendable {
    private let logger: Logger?
    private let warned = Mutex<Set<String>>([])

    init(logger: Logger?) { self.logger = logger }

    func check(_ endpoint: String, in prices: PriceList) {
        let price = prices.price(for: endpoint)
        guard !price.known, let logger, warned.withLock({ $0.insert(endpoint).inserted }) else { return }
        logger.warning("no price is known for \(endpoint): its jobs are estimated and budgeted at the highest known price, \(price.perSecond.exactDescription)/s; set prices: in the config to count them right")
    }
}
