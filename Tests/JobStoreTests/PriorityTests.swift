import Foundation
import JobStore
import Testing
import TestSupport

/// High before normal before low, first in, first out within each; kept by retry and rerun.
@Suite("Job priority")
struct PriorityTests {
    @Test("claims take every high job before any normal one, normal before low, oldest first within a level; rerun and retry keep it", arguments: StoreKind.allCases)
    func claimOrder(kind: StoreKind) throws {
        let (store, folder) = try kind.make()
        defer { folder?.remove() }
        let levels: [JobPriority] = [.low, .normal, .high, .normal, .high, .low]
        let batch = NewBatch(
            stem: "mixed", sourcePath: "/jobs/mixed.yaml", sourceSHA256: "sha", day: "2026-12-01",
            jobs: levels.enumerated().map { index, level in
                NewJob(name: "j\(index)", specJSON: "{}", endpoint: "e", durationSeconds: 5, estimatedCostMicros: 560_000, priority: level)
            })
        let jobs = try acceptedJobs(store, batch)
        #expect(jobs.map(\.priority) == levels)
        var order: [String] = []
        while let next = try store.claim(limit: 1).claimed.first { order.append(next.name) }
        #expect(order == ["j2", "j4", "j1", "j3", "j0", "j5"])
        let failed = try store.fail(jobs[2].id, from: .uploading, error: StoredError(reason: "t", message: "x"))
        #expect(try store.requeue(failed.id, from: .failed).priority == .high)
        // A low job put back to download what fal already has goes first: it is free, and fal deletes results.
        try store.fail(jobs[0].id, from: .uploading, error: StoredError(reason: "download", message: "cut"), retryBy: .download)
        try store.requeue(jobs[0].id, from: .failed, route: .download)
        #expect(try store.claim(limit: 1).claimed.map(\.name) == ["j0"])
        #expect(try store.claim(limit: 1).claimed.map(\.name) == ["j2"])
        guard case .accepted(_, let copies)? = try store.rerunBatch(named: "mixed", day: "2026-12-02") else { Issue.record("not rerun"); return }
        #expect(copies.map(\.priority) == levels)
        #expect(copies.allSatisfy { $0.estimatedCostMicros == 560_000 }, "no prices given: the old estimates")
        guard case .accepted(_, let repriced)? = try store.rerunBatch(named: "mixed", day: "2026-12-02", price: { _, seconds in Int64(seconds) * 84_000 }) else {
            Issue.record("not rerun"); return
        }
        #expect(repriced.allSatisfy { $0.estimatedCostMicros == 420_000 }, "a rerun is priced at today's prices")
    }
}
