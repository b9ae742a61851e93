import Foundation
import JobStore
import KlingCore
import Runner
import Testing

/// `retry`'s decisions on a real store: the recorded route, consent before paying twice, and a job that moved.
@Suite("Retrying one job")
struct JobRetrierTests {
    let origin = "https://queue.fal.run"

    /// A store holding one job failed with `route`, at `origin` when given.
    func failedJob(route: RetryRoute) async throws -> (JobStore, JobRecord) {
        let store = try JobStore.inMemory()
        let batch = NewBatch(
            stem: "promo", sourcePath: "/jobs/promo.yaml", sourceSHA256: UUID().uuidString, day: "2026-12-01",
            jobs: [NewJob(name: "promo-1", specJSON: "{}", endpoint: "fal-ai/kling-video/o1/reference-to-video", durationSeconds: 5, estimatedCostMicros: 560_000)])
        _ = try await store.accept(batch)
        let job = try #require(try await store.claim(limit: 1).claimed.first)
        let failed = try await store.fail(job.id, from: job.state, error: StoredError(reason: "test", message: "made to fail"), retryBy: route)
        return (store, failed)
    }

    @Test("a failed job goes back by the route its failure recorded", arguments: [RetryRoute.download, .result, .submit])
    func recordedRoute(route: RetryRoute) async throws {
        let (store, job) = try await failedJob(route: route)
        let outcome = try await JobRetrier(store: store, queueOrigin: origin).retry(job, allowPaidResubmit: false)
        #expect(outcome == .requeued(route, foreignOrigin: nil))
        #expect(try store.job(job.id)?.state == .queued)
    }

    @Test("a paid result fal lost is submitted again only with consent, which names the cost")
    func paidResubmit() async throws {
        let (store, job) = try await failedJob(route: .paidResubmit)
        let retrier = JobRetrier(store: store, queueOrigin: origin)
        #expect(try await retrier.retry(job, allowPaidResubmit: false) == .needsPaidResubmit(cost: USD(micros: 560_000)))
        #expect(try store.job(job.id)?.state == .failed, "nothing moved without consent")
        #expect(try await retrier.retry(job, allowPaidResubmit: true) == .requeued(.paidResubmit, foreignOrigin: nil))
    }

    @Test("a job that is not failed or cancelled is refused; one that moved meanwhile is left alone")
    func refused() async throws {
        let (store, job) = try await failedJob(route: .submit)
        let retrier = JobRetrier(store: store, queueOrigin: origin)
        #expect(try await retrier.retry(job, allowPaidResubmit: false) == .requeued(.submit, foreignOrigin: nil))
        #expect(try await retrier.retry(job, allowPaidResubmit: false) == .changedMeanwhile, "the record read before was failed; the store says queued")
        let queued = try #require(try store.job(job.id))
        #expect(try await retrier.retry(queued, allowPaidResubmit: false) == .notRetryable(.queued))
    }
}
