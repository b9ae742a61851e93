import Foundation
import JobStore
import KlingCore

/// `retry` for one job: the route its failure recorded, a paid resubmission only with consent, one guarded
/// requeue. The CLI parses and prints; the decision is here, where it can be tested without a terminal.
public struct JobRetrier: Sendable {
    let store: any JobQueue
    /// The fal origin this host's runners use: a request elsewhere is fetched only by a runner configured for it.
    let queueOrigin: String

    public init(store: any JobQueue, queueOrigin: String) {
        self.store = store
        self.queueOrigin = queueOrigin
    }

    /// What became of one retry.
    public enum Outcome: Sendable, Equatable {
        /// Queued again to finish by `route`; `foreignOrigin` when its request is at another origin than ours.
        case requeued(RetryRoute, foreignOrigin: String?)
        /// Only failed or cancelled jobs can be retried.
        case notRetryable(JobState)
        /// fal lost the result it was paid for; a new submission costs `cost` and needs `allowPaidResubmit`.
        case needsPaidResubmit(cost: USD)
        /// A runner or another command moved the job meanwhile; nothing was changed.
        case changedMeanwhile
    }

    /// Requeues `job` by its recorded route. One transaction.
    public func retry(_ job: JobRecord, allowPaidResubmit: Bool) async throws -> Outcome {
        guard let route = job.retryRoute else { return .notRetryable(job.state) }
        if route == .paidResubmit && !allowPaidResubmit { return .needsPaidResubmit(cost: USD(micros: job.estimatedCostMicros)) }
        do {
            _ = try await store.requeue(job.id, from: job.state, route: route)
        } catch StoreError.stale {
            return .changedMeanwhile
        }
        let foreign = route == .result ? job.falOrigin.flatMap { $0 == queueOrigin ? nil : $0 } : nil
        return .requeued(route, foreignOrigin: foreign)
    }

    /// What a route will do for `job`, in words, with its cost when it submits.
    public static func describe(_ route: RetryRoute, _ job: JobRecord) -> String {
        switch route {
        case .download: "download the video again (free; nothing is submitted)"
        case .result: "fetch the result of request \(job.requestId ?? "?") again (free; nothing is submitted)"
        case .submit: "submit again (\(USD(micros: job.estimatedCostMicros)))"
        case .paidResubmit: "submit again, paying a second time (\(USD(micros: job.estimatedCostMicros)))"
        }
    }
}
