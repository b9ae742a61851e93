import Foundation
import KlingCore

/// One request in the emulated queue, from submit to its end.
struct EmulatedRequest: Sendable {
    let id: String
    /// The full endpoint id it was submitted to.
    let endpoint: String
    /// `owner/alias`, as its queue URLs use.
    let app: String
    let key: String
    let input: JSONValue
    /// SHA-256 of the canonical input, for counting submissions per distinct body.
    let bodyHash: String
    let submittedAt: Date
    /// When it may leave IN_QUEUE at the earliest (`queueSeconds` after submit).
    let eligibleAt: Date
    let runSeconds: Double
    var held: Bool
    var phase: Phase = .queued
    var startedAt: Date?
    var endedAt: Date?
    var outcome: Outcome
    let aspectRatio: String
    let videoBytes: Int
    /// Seconds the result video plays: the requested `duration`, or a wrong one on purpose when
    /// `wrongDurationProbability` fired at submit.
    let videoSeconds: Int
    var statusPolls = 0
    /// `?fal_webhook=` of its submit: where its outcome is POSTed once it ends.
    var webhookURL: String?

    enum Phase: String, Sendable { case queued = "IN_QUEUE", running = "IN_PROGRESS", completed = "COMPLETED" }

    /// How the request ends; decided at submit so that the fault sequence is reproducible.
    enum Outcome: Sendable, Equatable {
        case success
        /// The model's input checks failed: 422 with this `detail` array.
        case invalid([JSONValue])
        /// The runner failed: `status` with `{detail, error_type}`.
        case runnerFailure(status: Int, errorType: String, detail: String)
        /// Content policy: 422, not retryable.
        case rejected
        case cancelled
    }

    var isFinished: Bool { phase == .completed }

    /// The `error` and `error_type` a status answer carries once finished.
    var completionError: (String, String?)? {
        switch outcome {
        case .success: return nil
        case .invalid(let issues):
            return (issues.first?["msg"]?.stringValue ?? "Unprocessable input", issues.first?["type"]?.stringValue)
        case .runnerFailure(_, let errorType, let detail): return (detail, errorType)
        case .rejected: return ("The content was flagged by a content checker.", "content_policy_violation")
        case .cancelled: return ("Request was cancelled", "client_cancelled")
        }
    }

    /// The status code the listing reports for a finished request.
    var listingStatusCode: Int? {
        guard isFinished else { return nil }
        switch outcome {
        case .success: return 200
        case .invalid, .rejected: return 422
        case .runnerFailure(let status, _, _): return status
        case .cancelled: return 499
        }
    }

    /// Log lines as a Kling runner would print them, up to `now`.
    func logs(at now: Date) -> [JSONValue] {
        guard let startedAt else { return [] }
        var lines: [(Date, String)] = [(startedAt, "Starting Kling O1 reference-to-video (\(aspectRatio))")]
        let end = endedAt ?? now
        let elapsed = end.timeIntervalSince(startedAt)
        if runSeconds > 0 {
            for step in 1...3 where elapsed >= runSeconds * Double(step) / 4 {
                lines.append((startedAt.addingTimeInterval(runSeconds * Double(step) / 4), "Generating video: \(step * 25)%"))
            }
        }
        if isFinished, outcome == .success { lines.append((end, "Video ready")) }
        return lines.map { date, message in
            ["message": .string(message), "level": "INFO", "timestamp": .string(FalTime.format(date))]
        }
    }
}

extension EmulatedRequest {
    /// The `duration` an input asks for, in seconds: fal's default of 5 when absent or not one of "3"…"10" (such an
    /// input fails the model's checks and never gets a video anyway).
    static func requestedSeconds(in input: JSONValue) -> Int {
        guard let text = input["duration"]?.stringValue, let seconds = Int(text), (3...10).contains(seconds) else { return 5 }
        return seconds
    }

    /// A duration that is wrong on purpose: 2 s longer, or 2 s shorter when longer would pass fal's 10 s maximum;
    /// never under 1 s.
    static func wrongSeconds(insteadOf requested: Int) -> Int {
        requested + 2 <= 10 ? requested + 2 : max(1, requested - 2)
    }
}

/// ISO 8601 timestamps as fal writes them.
enum FalTime {
    static func format(_ date: Date) -> String { date.iso8601Milliseconds }

    static func parse(_ text: String) -> Date? { Date(iso8601: text) }
}
