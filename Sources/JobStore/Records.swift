import Foundation

/// A spec file accepted into the store: all its jobs were valid.
public struct BatchRecord: Sendable, Codable, Hashable, Identifiable {
    public var id: Int64
    /// Unique name: the file's stem, numbered when taken (`teasers`, `teasers-2`).
    public var name: String
    public var sourcePath: String
    public var sourceSha256: String
    public var acceptedAt: Date
    /// Where its outputs go, relative to the output root: `<YYYY-MM-DD>/<name>`.
    public var outputDir: String
    /// Its spec's `on_complete:` hook name, or `none`; nil: the runner's `on_complete` setting.
    public var onComplete: String?
}

/// One batch at a glance, for the review page: its jobs by state (count, estimated cost) and what was sent to fal.
public struct BatchOverview: Sendable {
    public var byState: [JobState: (count: Int, costMicros: Int64)] = [:]
    public var spentMicros: Int64 = 0

    public init() {}

    public var jobs: Int { byState.values.reduce(0) { $0 + $1.count } }
    public var estimatedMicros: Int64 { byState.filter { $0.key != .cancelled }.values.reduce(0) { $0 + $1.costMicros } }
    public func count(_ states: JobState...) -> Int { states.reduce(0) { $0 + (byState[$1]?.count ?? 0) } }
}

/// One job and everything the runner knows about it.
public struct JobRecord: Sendable, Codable, Hashable, Identifiable {
    public var id: Int64
    public var batchId: Int64
    public var name: String
    public var state: JobState
    /// The validated job spec as JSON (KlingSpec's `JobSpec`).
    public var specJson: String
    public var endpoint: String
    public var durationSeconds: Int
    public var estimatedCostMicros: Int64
    /// Submissions that could have created a request at fal (rate limits and unsent submits do not count).
    public var attempts: Int
    /// Retries of calls that never reached fal, for their own backoff.
    public var deferrals: Int
    public var nextAttemptAt: Date?
    public var lastError: String?
    public var requestId: String?
    public var statusUrl: String?
    public var responseUrl: String?
    public var cancelUrl: String?
    /// The exact JSON body of the current attempt's submit, canonical; reconciliation matches fal's listing to it.
    public var submittedInput: String?
    public var submitStartedAt: Date?
    /// Set when a submit of unknown outcome was given up on and the job submitted again.
    public var possibleDuplicate: Bool
    public var statusPolls: Int
    /// How many of fal's log lines are already in the event log.
    public var logLines: Int
    public var resultJson: String?
    public var falMetrics: String?
    public var videoUrl: String?
    public var videoExpectedBytes: Int64?
    public var videoPath: String?
    public var videoBytes: Int64?
    public var videoSha256: String?
    public var manifestPath: String?
    public var heldReason: String?
    /// Dollars (in micros) committed for this job by the budget; 0 until claimed.
    public var reservedMicros: Int64
    /// The UTC day (`YYYY-MM-DD`) the reservation counts against.
    public var reservedDay: String?
    public var cancelRequested: Bool
    /// The origin (`scheme://host:port`) the job's current request was sent to; nil before any submit.
    public var falOrigin: String?
    /// For a failed job: what `retry` must do to finish it.
    public var retryBy: RetryRoute?
    /// For a queued job put back by `retry`: what the claim resumes instead of submitting.
    public var resume: RetryRoute?
    /// The number of its latest attempt (as `show` and the manifest number them); 0 before any.
    public var lastAttempt: Int
    /// fal's submit headers as sent with the current request (JSON: output_lifetime_seconds, queue_priority,
    /// start_timeout_seconds); recorded with the body, before anything leaves.
    public var submitOptions: String?
    /// What the downloaded MP4 says it is: playing time in milliseconds and display size.
    public var videoDurationMs: Int?
    public var videoWidth: Int?
    public var videoHeight: Int?
    /// Why the completed video needs a look (it differs from what was paid for); nil when it matches.
    public var needsReview: String?
    /// The on_complete hook to run for this completed job (JSON list of words), and how its runs went:
    /// `hookState` is pending, done or failed (given up); nil when no hook applies.
    public var hookCommand: String?
    public var hookState: String?
    public var hookAttempts: Int = 0
    public var hookNextAt: Date?
    /// The last run: `{"status": 0, "timed_out": false, "output": [...], "at": "..."}`.
    public var hookResult: String?
    /// Claimed before lower priorities; kept by `retry` and `rerun`.
    public var priority: JobPriority
    public var createdAt: Date
    public var submittedAt: Date?
    public var startedAt: Date?
    public var falCompletedAt: Date?
    public var finishedAt: Date?
    public var updatedAt: Date

    /// What `retry` does for this job: what its failure recorded, a new submission after a cancel; nil when it is
    /// neither failed nor cancelled.
    public var retryRoute: RetryRoute? {
        switch state {
        case .failed: retryBy ?? .submit
        case .cancelled: .submit
        default: nil
        }
    }
}

/// How soon a job is claimed: every high one before any normal one, normal before low, first in, first out within.
public enum JobPriority: Int, Sendable, Codable, Hashable, CaseIterable, Comparable {
    case low = 0, normal = 1, high = 2

    /// As specs and `show` write it.
    public var label: String {
        switch self {
        case .low: "low"
        case .normal: "normal"
        case .high: "high"
        }
    }

    /// Reads `high`, `normal` or `low`.
    public init?(label: String) {
        guard let found = Self.allCases.first(where: { $0.label == label.lowercased() }) else { return nil }
        self = found
    }

    public static func < (lhs: JobPriority, rhs: JobPriority) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// One try at submitting a job, kept with its error whatever happened (River's AttemptError).
public struct AttemptRecord: Sendable, Codable, Hashable {
    public var id: Int64
    public var jobId: Int64
    public var number: Int
    public var startedAt: Date
    public var endedAt: Date?
    public var requestId: String?
    public var outcome: AttemptOutcome
    /// Whether it counts against the maximum number of attempts.
    public var counted: Bool
    public var errorReason: String?
    public var errorMessage: String?
    public var httpStatus: Int?
    /// The runner that sent it (`host-xxxxxx`); nil for attempts from before v8.
    public var attemptedBy: String?
}

/// How an attempt ended.
public enum AttemptOutcome: String, Sendable, Codable, CaseIterable {
    /// The submit is on its way.
    case submitting
    /// fal accepted it; the request id is known.
    case accepted
    /// No answer after the body was sent; being reconciled.
    case unknown
    /// Found again in fal's listing and adopted.
    case adopted
    /// Reconciliation found nothing within the grace period.
    case lost
    /// fal answered with an error; nothing was created.
    case refused
    /// The submit never left (connection failed before the body was sent).
    case notSent = "not_sent"
    /// 429: waiting, not a failure.
    case rateLimited = "rate_limited"
    /// The request ran and failed at fal.
    case failedAtFal = "failed_at_fal"
    /// The request finished with a video.
    case succeeded
    /// Cancelled by an operator.
    case cancelled
}

/// A line of a job's history: a state change, an error, a note, or one of fal's log lines.
public struct JobEvent: Sendable, Codable, Hashable {
    public var id: Int64
    public var jobId: Int64
    public var at: Date
    public var kind: Kind
    public var fromState: JobState?
    public var toState: JobState?
    public var message: String
    /// Whether an operator caused it (`cancel`, `retry`…), for the daemon's log.
    public var byOperator: Bool

    public enum Kind: String, Sendable, Codable { case state, error, note, log }
}

/// What it takes to finish a failed job, so that `retry` never pays for what fal still has.
public enum RetryRoute: String, Sendable, Codable, CaseIterable {
    /// fal has the video: download it again. Free.
    case download
    /// fal finished the request but its result could not be fetched: fetch it again, then download. Free.
    case result
    /// Nothing usable was paid for (refused, failed at fal, never sent, cancelled): submit again.
    case submit
    /// fal reports a paid result gone (404/410): only a new, paid submission can make the video.
    case paidResubmit = "paid_resubmit"

    /// Whether the retry sends a new submission (and so costs money).
    public var submits: Bool { self == .submit || self == .paidResubmit }

    /// How `list` and `show` say it.
    public var label: String {
        switch self {
        case .download: "download again (free)"
        case .result: "fetch the result again (free)"
        case .submit: "submit again"
        case .paidResubmit: "submit again with --resubmit (fal no longer has the paid result)"
        }
    }
}
