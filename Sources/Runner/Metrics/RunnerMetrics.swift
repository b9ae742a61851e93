import CoreMetrics
import Foundation

/// The runner's metrics, through swift-metrics: whatever backend is bootstrapped (Prometheus under
/// `daemon --http`) receives them; without one they cost nothing.
enum RunnerMetrics {
    /// An on_complete hook ended, well or not.
    static func hookRan(succeeded: Bool) {
        Counter(label: "kling_batch_hook_runs_total", dimensions: [("result", succeeded ? "ok" : "failed")]).increment()
    }

    /// Webhooks by what became of them: accepted, duplicate, refused (bad signature or stale), unknown (no such job).
    static func webhook(_ outcome: String) { Counter(label: "kling_batch_webhooks_total", dimensions: [("outcome", outcome)]).increment() }

    /// A submit fal accepted (a request now exists and will be paid for).
    static func submitted() { Counter(label: "kling_batch_submissions_total").increment() }

    /// A new attempt or a deferred call was scheduled, by why.
    static func retried(reason: String) { Counter(label: "kling_batch_retries_total", dimensions: [("reason", reason)]).increment() }

    /// Video bytes written to the output tree.
    static func downloaded(bytes: Int64) { Counter(label: "kling_batch_downloaded_bytes_total").increment(by: bytes) }

    /// A job reached the end of its life, by how.
    static func finished(_ state: String) { Counter(label: "kling_batch_jobs_finished_total", dimensions: [("state", state)]).increment() }
}
