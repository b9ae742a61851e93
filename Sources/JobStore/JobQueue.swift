import Foundation

/// Everything the runner and the CLI need from the queue of jobs, in their own words. The runner holds an
/// `any JobQueue`, so a second backend (PostgreSQL, for several hosts) can take SQLite's place without touching it.
///
/// Rules every conformer keeps:
/// - each method is one transaction, named in its comment; a job changes state only through these methods, each
///   one guarded update (`… WHERE id = ? AND state = ?`) that throws `StoreError.stale` when the job has moved;
/// - a store that cannot be written throws `StoreError.unavailable` (wait and try again, never resend anything);
/// - no type of the storage engine crosses this boundary.
///
/// The methods are `async`: a networked backend suspends, and SQLite's conformer runs its short transactions on the
/// calling task.
public typealias JobQueue = JobIntake & JobClaims & JobLifecycle & JobOperations & JobQueries & QueueHealth & NotificationOutbox & CompletionHooks

/// Taking spec files in.
public protocol JobIntake: Sendable {
    /// Accepts a batch and all its jobs, or nothing. One transaction.
    func accept(_ batch: NewBatch, allowDuplicate: Bool, at now: Date, folderIsTaken: @Sendable (String) -> Bool) async throws -> AcceptOutcome

    /// Accepts several batches, each as `accept` would, all or none. One transaction.
    func acceptAll(_ batches: [NewBatch], at now: Date, folderIsTaken: @Sendable (String) -> Bool) async throws -> [AcceptOutcome]

    /// Queues a copy of the batch `name` (every job from its spec again) as a new batch; nil when there is none.
    /// One transaction.
    /// `price` gives each copied job's cost (endpoint, seconds) at today's prices; nil keeps the old estimates.
    func rerunBatch(
        named name: String, day: String, at now: Date, price: (@Sendable (String, Int) -> Int64)?, folderIsTaken: @Sendable (String) -> Bool
    ) async throws -> AcceptOutcome?
}

/// Handing work to a runner.
public protocol JobClaims: Sendable {
    /// After a crash: uploading → queued (nothing was paid), submitting → submit_unknown (fal may have it). One transaction.
    func recoverInterrupted(at now: Date) async throws -> (requeued: Int, unknown: Int)

    /// queued (due) or held → uploading for up to `limit` jobs, oldest first, each one's cost reserved against
    /// `budget` in the same transaction (what does not fit waits in held); a job `retry` put back goes straight to
    /// downloading or in_queue. With `origin`, a job whose result is at another origin is left alone. One transaction.
    func claim(limit: Int, budget: SpendLimits, origin: String?, now: Date) async throws -> ClaimOutcome

    /// The jobs a runner picks up again at start without claiming them (submit_unknown, in_queue, in_progress, downloading).
    func resumableJobs() async throws -> [JobRecord]

    /// The earliest time a queued job becomes due, when none is due now.
    func nextDueTime() async throws -> Date?

    /// Whether any job waits for budget.
    func hasHeldJob() async throws -> Bool

    /// Jobs not final yet; with `origin`, leaving out those whose request is at another origin.
    func unfinishedCount(origin: String?) async throws -> Int

    /// Unfinished jobs whose request is at another origin than `origin`, by that origin.
    func foreignJobs(origin: String) async throws -> [String: [Int64]]

    /// Jobs that hold, or may hold, a request at fal.
    func atFalCount() async throws -> Int
}

/// A job's life: each method is one guarded transition, with its attempt and its event, in one transaction.
public protocol JobLifecycle: Sendable {
    /// uploading → submitting with the exact body and the origin it goes to, committed before anything leaves;
    /// when an operator asked to cancel, nothing moves and `.cancelRequested` says so.
    /// `options` are the submit headers as they will be sent (JSON), recorded for the manifest and for a resend;
    /// `runner` names who sends it, on the attempt (`attempted_by`).
    func beginSubmit(_ id: Int64, input: String, origin: String?, options: String?, runner: String?, at now: Date) async throws -> SubmitStart
    /// submitting → in_queue: fal answered with a request id; the submit enters the spend ledger.
    func recordAccepted(_ id: Int64, request: StoredRequest, at now: Date) async throws -> JobRecord
    /// submitting → submit_unknown: the body left, no usable answer came back; counted as spend (it may be paid).
    func recordUnknown(_ id: Int64, error: StoredError, at now: Date) async throws -> JobRecord
    /// submitting → queued (retry at `retryAt`) or failed (`retryAt` nil): fal refused, or nothing left.
    func recordRefused(_ id: Int64, refusal: Refusal, at now: Date) async throws -> JobRecord
    /// submit_unknown → in_queue: the lost submit was found in fal's listing.
    func adopt(_ id: Int64, request: StoredRequest, at now: Date) async throws -> JobRecord
    /// submit_unknown → queued (a possible duplicate), or → failed (naming its manifest) when that was attempt `maxAttempts`.
    func giveUpReconciling(_ id: Int64, graceDescription: String, maxAttempts: Int, manifestPath: String?, at now: Date) async throws -> JobRecord
    /// in_queue → in_progress.
    func markStarted(_ id: Int64, at now: Date) async throws -> JobRecord
    /// in_queue / in_progress → downloading: fal finished with a video.
    func recordResult(_ id: Int64, from: JobState, result: FalResult, at now: Date) async throws -> JobRecord
    /// in_queue / in_progress → queued for a new attempt, or → failed: the request failed at fal.
    func recordFalFailure(_ id: Int64, from: JobState, failure: FalFailure, at now: Date) async throws -> JobRecord
    /// downloading → completed: video and manifest are on disk; `hook` (JSON words) is its on_complete hook, due now.
    func recordDownloaded(_ id: Int64, video: DownloadedVideo, manifestPath: String, hook: String?, at now: Date) async throws -> JobRecord
    /// Any non-final state → failed, with what `retry` must do; the manifest (if written) is named.
    func fail(_ id: Int64, from: JobState, error: StoredError, retryBy: RetryRoute, manifestPath: String?, at now: Date) async throws -> JobRecord
    /// uploading → queued, to try again at `retryAt`, spending no attempt.
    func postpone(_ id: Int64, from: JobState, error: StoredError, retryAt: Date, at now: Date) async throws -> JobRecord
    /// One status poll and any new fal log lines; false when the job moved or an operator asked to cancel it.
    func notePoll(_ id: Int64, in state: JobState, logs: [String], at now: Date) async throws -> Bool
    /// Shows why a job that stays where it is waits (a full output disk), without moving it.
    func noteWaiting(_ id: Int64, in state: JobState, reason: String, at now: Date) async throws
    /// Remembers a local image uploaded through the storage `origin`.
    func recordUpload(_ upload: UploadedImage, at now: Date) async throws
    /// The URL of an image uploaded through `origin` at or after `notBefore`.
    func cachedUpload(sha256: String, origin: String, notBefore: Date) async throws -> String?
}

/// What operators do, while a runner may be working on the same jobs.
public protocol JobOperations: Sendable {
    /// Marks a job for cancellation (a runner holding it cancels it at its next step); false when it is final.
    func requestCancel(_ id: Int64, at now: Date) async throws -> Bool
    /// `from` → cancelled, its open attempt closed; the manifest (if written) is named.
    func recordCancelled(_ id: Int64, from: JobState, note: String, manifestPath: String?, at now: Date) async throws -> JobRecord
    /// failed or cancelled → queued, finished by `route` (download and fetch keep the request and submit nothing).
    func requeue(_ id: Int64, from: JobState, route: RetryRoute, at now: Date) async throws -> JobRecord
    /// Forgets finished jobs older than `cutoff` and empty batches; never the spend ledger.
    func purge(finishedBefore cutoff: Date) async throws -> (jobs: Int, batches: Int)
    /// Fails every unfinished job whose request is at `origin`, to be retried only with a paid resubmission.
    func abandon(origin: String, at now: Date) async throws -> [JobRecord]
    /// Remembers the output root the runner writes to (an absolute path), so a command run from elsewhere
    /// (`cancel`, `rerun`) writes its manifests into the same tree. One transaction.
    func recordOutputRoot(_ path: String) async throws
    /// Remembers the fal base URL the runner sends to when it is not fal's own (`--fal-url`, `--simulate`; nil:
    /// fal's hosts), so operator commands reach the same fal without the flag repeated by hand.
    func recordFalBase(_ url: String?) async throws
}

/// Reading, for the runner's decisions, the CLI and the manifests.
public protocol JobQueries: Sendable {
    func job(_ id: Int64) async throws -> JobRecord?
    /// The job whose current request is `requestID` (a webhook names only the request).
    func job(requestID: String) async throws -> JobRecord?
    func batch(_ id: Int64) async throws -> BatchRecord?
    func batches() async throws -> [BatchRecord]
    func jobs(in states: [JobState]) async throws -> [JobRecord]
    func allJobs() async throws -> [JobRecord]
    func jobs(inBatch batchID: Int64) async throws -> [JobRecord]
    func events(of jobID: Int64) async throws -> [JobEvent]
    /// One page of a batch's jobs, by id, in `state` if given and matching `search` (in the name, or anywhere in the
    /// spec: prompt, meta values), and how many match in all. One read transaction.
    func jobPage(inBatch batchID: Int64, state: JobState?, search: String?, limit: Int, offset: Int) async throws -> (jobs: [JobRecord], total: Int)
    /// How many of the batch's jobs have not ended.
    func unfinishedCount(inBatch batchID: Int64) async throws -> Int
    /// Per batch: jobs and their estimated cost by state, and the dollars sent to fal so far (the spend ledger).
    func batchOverview() async throws -> [Int64: BatchOverview]
    /// State changes after event `id`, oldest first, at most `limit` (for live pages).
    func stateEvents(after id: Int64, limit: Int) async throws -> [JobEvent]
    /// Events after `id` that operators caused, oldest first (for the daemon's log).
    func operatorEvents(after id: Int64) async throws -> [JobEvent]
    func attempts(of jobID: Int64) async throws -> [AttemptRecord]
    func counts() async throws -> [JobState: Int]
    /// Count and estimated cost by state of the jobs in `ids`.
    func tally(of ids: Set<Int64>) async throws -> [JobState: (count: Int, costMicros: Int64)]
    func spending(now: Date) async throws -> Spending
    func ledger() async throws -> [SpendRecord]
    /// Ledger rows sent in `[since, until)`, oldest first (`report`).
    func ledger(since: Date?, until: Date?) async throws -> [SpendRecord]
    /// One job's ledger rows: what its manifest says it cost.
    func spend(ofJob id: Int64) async throws -> [SpendRecord]
    /// Completed jobs whose video did not match what was paid for.
    func flaggedJobs() async throws -> [JobRecord]
    func oldestQueued() async throws -> Date?
    /// The output root the last runner on this queue wrote to; nil before any ran.
    func outputRoot() async throws -> String?
    /// The fal base URL the last runner on this queue sent to, when it was not fal's own.
    func falBase() async throws -> String?
    /// The newest event's id: it moves whenever any job changes.
    func lastEventID() async throws -> Int64
    /// Whether a job or an attempt holds this fal request id already.
    func isKnownRequestID(_ requestID: String) async throws -> Bool
    /// Every request id any attempt ever had, with its job.
    func attemptRequestIDs() async throws -> [String: Int64]
}

/// The queue's own health.
public protocol QueueHealth: Sendable {
    /// Who this store is; fixed at creation.
    var identity: StoreIdentity { get }
    /// Where it is, for messages (a file path, a database URL without its password).
    var location: String { get }
    /// The engine's own integrity check and the queue's invariants.
    func check() async throws -> StoreCheckReport
    /// A small write that proves the queue can be written again.
    func probeWrite(at now: Date) async throws
}

/// What `beginSubmit` did.
public enum SubmitStart: Sendable {
    /// submitting: the body is recorded; send it now, once.
    case submit(JobRecord)
    /// An operator asked to cancel it: nothing moved, nothing may be sent.
    case cancelRequested(JobRecord)
}

/// fal's refusal of a submit (or a submit that never left), as the store records it.
public struct Refusal: Sendable {
    public var outcome: AttemptOutcome
    /// Whether it spends one of the job's attempts.
    public var counted: Bool
    /// Whether it grows the not-sent backoff.
    public var deferral: Bool
    public var error: StoredError
    /// When to try again; nil: the job fails.
    public var retryAt: Date?
    /// For a job that fails: the manifest written for it.
    public var manifestPath: String?

    public init(outcome: AttemptOutcome, counted: Bool, deferral: Bool = false, error: StoredError, retryAt: Date?, manifestPath: String? = nil) {
        self.outcome = outcome
        self.counted = counted
        self.deferral = deferral
        self.error = error
        self.retryAt = retryAt
        self.manifestPath = manifestPath
    }
}

/// A finished request's output, as the store keeps it.
public struct FalResult: Sendable {
    public var resultJSON: String
    public var videoURL: String
    public var expectedBytes: Int64?
    public var metrics: String?

    public init(resultJSON: String, videoURL: String, expectedBytes: Int64?, metrics: String?) {
        self.resultJSON = resultJSON
        self.videoURL = videoURL
        self.expectedBytes = expectedBytes
        self.metrics = metrics
    }
}

/// A request that failed at fal.
public struct FalFailure: Sendable {
    public var error: StoredError
    /// When a new attempt may go; nil: the job fails.
    public var retryAt: Date?
    public var metrics: String?
    /// For a job that fails: what `retry` must do, and the manifest written for it.
    public var retryBy: RetryRoute
    public var manifestPath: String?

    public init(error: StoredError, retryAt: Date?, metrics: String? = nil, retryBy: RetryRoute = .submit, manifestPath: String? = nil) {
        self.error = error
        self.retryAt = retryAt
        self.metrics = metrics
        self.retryBy = retryBy
        self.manifestPath = manifestPath
    }
}

/// A video on disk.
public struct DownloadedVideo: Sendable {
    public var path: String
    public var bytes: Int64
    public var sha256: String
    /// What the MP4 says it is (nil when it could not be read): how long it plays and how large it shows.
    public var durationMillis: Int?
    public var width: Int?
    public var height: Int?
    /// Why it differs from what was paid for (duration, aspect ratio); nil when it matches.
    public var needsReview: String?

    public init(path: String, bytes: Int64, sha256: String, durationMillis: Int? = nil, width: Int? = nil, height: Int? = nil, needsReview: String? = nil) {
        self.path = path
        self.bytes = bytes
        self.sha256 = sha256
        self.durationMillis = durationMillis
        self.width = width
        self.height = height
        self.needsReview = needsReview
    }
}

/// A local image in fal storage.
public struct UploadedImage: Sendable {
    public var sha256: String
    public var fileURL: String
    public var byteCount: Int
    public var contentType: String
    public var origin: String

    public init(sha256: String, fileURL: String, byteCount: Int, contentType: String, origin: String) {
        self.sha256 = sha256
        self.fileURL = fileURL
        self.byteCount = byteCount
        self.contentType = contentType
        self.origin = origin
    }
}

/// What a claim did: the jobs now owned by the caller, and the ones that just started waiting for budget.
public struct ClaimOutcome: Sendable {
    public var claimed: [JobRecord] = []
    public var held: [(job: JobRecord, reason: String)] = []

    public init() {}
}
