import Foundation

/// The clock defaults callers leave out: "now", as each method's own `at`.
extension JobIntake {
    public func accept(_ batch: NewBatch, allowDuplicate: Bool = false, folderIsTaken: @Sendable (String) -> Bool = { _ in false }) async throws -> AcceptOutcome {
        try await accept(batch, allowDuplicate: allowDuplicate, at: Date(), folderIsTaken: folderIsTaken)
    }
}

extension JobClaims {
    public func recoverInterrupted() async throws -> (requeued: Int, unknown: Int) { try await recoverInterrupted(at: Date()) }
    public func claim(limit: Int, budget: SpendLimits = SpendLimits(), origin: String? = nil) async throws -> ClaimOutcome {
        try await claim(limit: limit, budget: budget, origin: origin, now: Date())
    }
    public func unfinishedCount() async throws -> Int { try await unfinishedCount(origin: nil) }
}

extension JobLifecycle {
    public func beginSubmit(_ id: Int64, input: String, origin: String?, options: String? = nil, runner: String? = nil) async throws -> SubmitStart {
        try await beginSubmit(id, input: input, origin: origin, options: options, runner: runner, at: Date())
    }
    public func recordAccepted(_ id: Int64, request: StoredRequest) async throws -> JobRecord { try await recordAccepted(id, request: request, at: Date()) }
    public func recordUnknown(_ id: Int64, error: StoredError) async throws -> JobRecord { try await recordUnknown(id, error: error, at: Date()) }
    public func recordRefused(_ id: Int64, refusal: Refusal) async throws -> JobRecord { try await recordRefused(id, refusal: refusal, at: Date()) }
    public func adopt(_ id: Int64, request: StoredRequest) async throws -> JobRecord { try await adopt(id, request: request, at: Date()) }
    public func markStarted(_ id: Int64) async throws -> JobRecord { try await markStarted(id, at: Date()) }
    public func recordResult(_ id: Int64, from: JobState, result: FalResult) async throws -> JobRecord {
        try await recordResult(id, from: from, result: result, at: Date())
    }
    public func recordFalFailure(_ id: Int64, from: JobState, failure: FalFailure) async throws -> JobRecord {
        try await recordFalFailure(id, from: from, failure: failure, at: Date())
    }
    public func recordDownloaded(_ id: Int64, video: DownloadedVideo, manifestPath: String, hook: String? = nil) async throws -> JobRecord {
        try await recordDownloaded(id, video: video, manifestPath: manifestPath, hook: hook, at: Date())
    }
    public func fail(_ id: Int64, from: JobState, error: StoredError, retryBy: RetryRoute = .submit, manifestPath: String? = nil) async throws -> JobRecord {
        try await fail(id, from: from, error: error, retryBy: retryBy, manifestPath: manifestPath, at: Date())
    }
    public func postpone(_ id: Int64, from: JobState, error: StoredError, retryAt: Date) async throws -> JobRecord {
        try await postpone(id, from: from, error: error, retryAt: retryAt, at: Date())
    }
    public func notePoll(_ id: Int64, in state: JobState, logs: [String]) async throws -> Bool { try await notePoll(id, in: state, logs: logs, at: Date()) }
    public func noteWaiting(_ id: Int64, in state: JobState, reason: String) async throws { try await noteWaiting(id, in: state, reason: reason, at: Date()) }
    public func recordUpload(_ upload: UploadedImage) async throws { try await recordUpload(upload, at: Date()) }
}

extension JobOperations {
    public func requestCancel(_ id: Int64) async throws -> Bool { try await requestCancel(id, at: Date()) }
    public func recordCancelled(_ id: Int64, from: JobState, note: String, manifestPath: String? = nil) async throws -> JobRecord {
        try await recordCancelled(id, from: from, note: note, manifestPath: manifestPath, at: Date())
    }
    public func requeue(_ id: Int64, from: JobState, route: RetryRoute = .submit) async throws -> JobRecord {
        try await requeue(id, from: from, route: route, at: Date())
    }
    public func abandon(origin: String) async throws -> [JobRecord] { try await abandon(origin: origin, at: Date()) }
}

extension JobQueries {
    public func spending() async throws -> Spending { try await spending(now: Date()) }
}

extension QueueHealth {
    public func probeWrite() async throws { try await probeWrite(at: Date()) }
}
