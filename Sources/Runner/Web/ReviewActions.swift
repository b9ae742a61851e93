import Foundation
import JobStore
import KlingCore

/// What the review page's buttons do: the CLI's `cancel`, `retry` and `rerun`, through the same library parts, so
/// the page can do nothing the CLI could not and keeps every guarantee the CLI keeps (a retry never pays again
/// without consent: the page never passes it).
public struct ReviewActions: Sendable {
    let canceller: JobCanceller
    let retrier: JobRetrier
    let ingestor: BatchIngestor
    /// Tells the runner there is work (the daemon's doorbell, or SIGUSR1 to a daemon of the same state folder).
    let wake: @Sendable () -> Void

    public init(canceller: JobCanceller, retrier: JobRetrier, ingestor: BatchIngestor, wake: @escaping @Sendable () -> Void) {
        self.canceller = canceller
        self.retrier = retrier
        self.ingestor = ingestor
        self.wake = wake
    }

    /// One action's outcome for the page: whether something changed, and what to say.
    struct Result: Sendable {
        let changed: Bool
        let message: String
    }

    func cancel(_ job: JobRecord) async throws -> Result {
        switch try await canceller.cancel(job.id) {
        case .cancelled(_, let note): return Result(changed: true, message: "cancelled: \(note)")
        case .requested:
            wake()
            return Result(changed: true, message: "cancel requested; the runner holding it cancels it at its next step")
        case .notCancellable(let why): return Result(changed: false, message: "not cancelled: \(why)")
        }
    }

    func retry(_ job: JobRecord) async throws -> Result {
        switch try await retrier.retry(job, allowPaidResubmit: false) {
        case .requeued(let route, _):
            wake()
            return Result(changed: true, message: JobRetrier.describe(route, job))
        case .notRetryable(let state): return Result(changed: false, message: "only failed or cancelled jobs can be retried; this one is \(state.label)")
        case .needsPaidResubmit(let cost):
            return Result(changed: false, message: "fal no longer has its result; a new submission would cost \(cost); use `kling-batch retry --resubmit` to pay for it")
        case .changedMeanwhile: return Result(changed: false, message: "the job moved meanwhile; nothing was changed")
        }
    }

    func rerun(_ batch: BatchRecord) async throws -> Result {
        switch try await ingestor.rerun(batchNamed: batch.name) {
        case .accepted(let copy, let jobs, _)?:
            wake()
            return Result(changed: true, message: "queued again as batch \(copy.name) (\(jobs.count) job\(jobs.count == 1 ? "" : "s"))")
        case .duplicate(let existing)?: return Result(changed: false, message: "already batch \(existing.name)")
        case .rejected(let report)?: return Result(changed: false, message: "its spec is no longer valid: \(report.errors.first?.description ?? "?")")
        case nil: return Result(changed: false, message: "no batch \(batch.name)")
        }
    }
}
