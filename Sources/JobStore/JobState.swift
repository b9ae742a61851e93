/// A job's life. Each state names the component that moves a job out of it; the transition table below is
/// the only way out, and every move is one guarded update (`… WHERE id = ? AND state = ?`).
public enum JobState: String, Sendable, Codable, CaseIterable, Comparable {
    /// Accepted, waiting for a free slot (or for `next_attempt_at`). Moved out by the dispatcher's claim (→ uploading;
    /// → downloading or → in_queue for a job `retry` put back to finish what fal already has, with no submit),
    /// the budget (→ held), or an operator's `cancel` (→ cancelled).
    case queued
    /// Waiting for budget; no attempt is spent. Moved out by the dispatcher's claim when spending allows
    /// (→ uploading, reserving its cost), or by `cancel`.
    case held
    /// Local images are being uploaded. Moved out by the executor (→ submitting, or → queued to retry, → failed);
    /// after a crash, start-up recovery moves it back to queued (nothing was paid).
    case uploading
    /// The submit is being sent; committed before the body leaves. Moved out by the executor (→ in_queue with the
    /// request id, → queued on a definite refusal, → failed, → submit_unknown); after a crash, recovery moves it to
    /// submit_unknown, because fal may have the request.
    case submitting
    /// fal may or may not have the request. Moved out by the reconciler: → in_queue when the request is found in
    /// fal's listing and adopted, → queued (flagged as a possible duplicate) when the grace period passes.
    case submitUnknown = "submit_unknown"
    /// Waiting in fal's queue. Moved out by the poller (→ in_progress, → downloading, → queued to retry a failed
    /// request, → failed) or `cancel` (→ cancelled).
    case inQueue = "in_queue"
    /// Running at fal. Moved out by the poller, like in_queue.
    case inProgress = "in_progress"
    /// fal finished; the video is being fetched. Moved out by the downloader (→ completed, → failed). A disk that
    /// cannot take the video (full, read-only) keeps the job here, waiting, rather than failing it.
    case downloading
    /// Video and manifest are on disk. Final.
    case completed
    /// Gave up; the manifest says why, and `retry_by` what `retry` must do. Final until an operator's `retry`
    /// (→ queued, to download again, fetch the result again, or submit again).
    case failed
    /// Stopped by an operator. Final until `retry` (→ queued).
    case cancelled

    /// Where each state may go next.
    public static let transitions: [JobState: Set<JobState>] = [
        .queued: [.uploading, .held, .cancelled, .failed, .downloading, .inQueue],
        .held: [.queued, .uploading, .cancelled],
        .uploading: [.submitting, .queued, .failed, .cancelled],
        .submitting: [.inQueue, .inProgress, .queued, .failed, .submitUnknown, .cancelled],
        .submitUnknown: [.inQueue, .inProgress, .downloading, .queued, .failed, .cancelled],
        .inQueue: [.inProgress, .downloading, .queued, .failed, .cancelled],
        .inProgress: [.downloading, .queued, .failed, .cancelled],
        .downloading: [.completed, .failed, .cancelled],
        .completed: [],
        .failed: [.queued],
        .cancelled: [.queued],
    ]

    public func canMove(to next: JobState) -> Bool { Self.transitions[self]?.contains(next) ?? false }

    /// Nothing more will happen without an operator.
    public var isTerminal: Bool { self == .completed || self == .failed || self == .cancelled }

    /// fal has (or may have) a request for the job: it occupies a slot of the concurrency limit.
    public var isAtFal: Bool { self == .submitting || self == .submitUnknown || self == .inQueue || self == .inProgress }

    /// The states in which fal has (or may have) a request.
    public static let atFal: [JobState] = allCases.filter(\.isAtFal)

    /// States a runner resumes after a restart without submitting again.
    public static let resumable: [JobState] = [.submitUnknown, .inQueue, .inProgress, .downloading]

    public static func < (lhs: JobState, rhs: JobState) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    /// The word shown to people: `in_queue`, `submit_unknown`…
    public var label: String { rawValue }
}
