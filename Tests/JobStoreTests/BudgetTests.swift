import Foundation
import JobStore
import KlingCore
import Testing
import TestSupport

@Suite("The budget and operator changes")
struct BudgetTests {
    let noon = ISO8601DateFormatter().date(from: "2026-11-25T12:00:00Z")!

    @Test("a daily budget is reserved in the claim: what does not fit waits as held, and a higher limit releases it", arguments: StoreKind.allCases)
    func dailyBudget(kind: StoreKind) throws {
        let (store, folder) = try kind.make()
        defer { folder?.remove() }
        _ = try acceptedJobs(store, newBatch("ten", jobs: 10))
        let limit = SpendLimits(perDay: USD(micros: 2_000_000))
        let first = try store.claim(limit: 10, budget: limit, now: noon)
        #expect(first.claimed.count == 3, "3 × $0.56 = $1.68 fits in $2.00, a fourth would not")
        #expect(first.held.count == 7)
        #expect(first.held.allSatisfy { $0.reason.contains("over the daily budget: $1.68 of $2.00") })
        #expect(try store.counts()[.held] == 7)
        #expect(try store.spending(now: noon).todayMicros == 1_680_000)
        // Claiming again changes nothing and spends no attempt.
        #expect(try store.claim(limit: 10, budget: limit, now: noon).claimed.isEmpty)
        #expect(try store.jobs(in: [.held]).allSatisfy { $0.attempts == 0 })
        // A higher limit lets the held jobs go, oldest first, still within it.
        let raised = try store.claim(limit: 10, budget: SpendLimits(perDay: USD(micros: 4_000_000)), now: noon)
        #expect(raised.claimed.count == 4)
        #expect(try store.counts()[.held] == 3)
        // The next UTC day has a fresh budget.
        let tomorrow = noon.addingTimeInterval(86_400)
        #expect(try store.claim(limit: 10, budget: limit, now: tomorrow).claimed.count == 3)
        #expect(BudgetDay.next(after: noon) == ISO8601DateFormatter().date(from: "2026-11-26T00:00:00Z"))
    }

    @Test("a batch budget limits each batch on its own", arguments: StoreKind.allCases)
    func batchBudget(kind: StoreKind) throws {
        let (store, folder) = try kind.make()
        defer { folder?.remove() }
        _ = try acceptedJobs(store, newBatch("a", jobs: 3))
        _ = try acceptedJobs(store, newBatch("b", jobs: 3))
        let outcome = try store.claim(limit: 10, budget: SpendLimits(perBatch: USD(micros: 1_200_000)), now: noon)
        #expect(outcome.claimed.count == 4, "two of each batch: $1.12 ≤ $1.20")
        #expect(Set(outcome.held.map(\.reason)).allSatisfy { $0.contains("over the batch budget") })
    }

    @Test("a job that failed without reaching fal gives its reservation back; one that reached fal keeps it", arguments: StoreKind.allCases)
    func reservationsReleased(kind: StoreKind) throws {
        let (store, folder) = try kind.make()
        defer { folder?.remove() }
        let jobs = try acceptedJobs(store, newBatch("r", jobs: 2))
        _ = try store.claim(limit: 2, budget: SpendLimits(perDay: USD(micros: 10_000_000)), now: noon)
        try store.fail(jobs[0].id, from: .uploading, error: StoredError(reason: "image", message: "unreadable"), at: noon)
        try store.beginSubmit(jobs[1].id, input: "{}", at: noon)
        try store.recordAccepted(jobs[1].id, request: request, at: noon)
        #expect(try store.spending(now: noon).todayMicros == 560_000)
        let tally = try store.tally(of: [jobs[0].id, jobs[1].id])
        #expect(tally[.failed]?.count == 1 && tally[.inQueue]?.count == 1 && tally[.inQueue]?.costMicros == 560_000)
        #expect(try store.tally(of: [jobs[1].id]).values.map(\.count) == [1])
        #expect(try !store.hasHeldJob())
    }

    @Test("an operator's cancel, retry and purge keep the history and never touch unfinished jobs", arguments: StoreKind.allCases)
    func operatorChanges(kind: StoreKind) throws {
        let (store, folder) = try kind.make()
        defer { folder?.remove() }
        let jobs = try acceptedJobs(store, newBatch("ops", jobs: 3))
        try store.recordCancelled(jobs[0].id, from: .queued, note: "cancelled by a test", at: noon)
        #expect(try store.job(jobs[0].id)?.state == .cancelled)
        #expect(try store.requestCancel(jobs[0].id) == false, "a final job cannot be asked to cancel")
        #expect(try store.requestCancel(jobs[1].id))
        let requeued = try store.requeue(jobs[0].id, from: .cancelled, at: noon)
        #expect(requeued.state == .queued && requeued.attempts == 0 && !requeued.cancelRequested)
        #expect(try store.events(of: jobs[0].id).count >= 3, "accepted, cancelled, requeued")
        try store.recordCancelled(jobs[0].id, from: .queued, note: "again", at: noon)
        let purged = try store.purge(finishedBefore: noon.addingTimeInterval(1))
        #expect(purged.jobs == 1 && purged.batches == 0)
        #expect(try store.allJobs().count == 2)
        #expect(try store.events(of: jobs[0].id).isEmpty)
    }
}
