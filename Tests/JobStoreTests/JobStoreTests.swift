import Foundation
import GRDB
@testable import JobStore
import Testing
import TestSupport

@Suite("The job store")
struct JobStoreTests {
    @Test("the state machine allows exactly its table's moves")
    func transitionTable() {
        for from in JobState.allCases {
            for to in JobState.allCases {
                #expect(from.canMove(to: to) == (JobState.transitions[from]?.contains(to) ?? false))
            }
        }
        #expect(!JobState.completed.canMove(to: .queued))
        #expect(JobState.allCases.filter(\.isTerminal) == [.completed, .failed, .cancelled])
        // Nothing that may have reached fal can go straight back to uploading: that would submit again.
        for state in JobState.allCases where state.isAtFal { #expect(!state.canMove(to: .uploading)) }
    }

    @Test("accepting: all jobs at once, names made unique, the same content refused", arguments: StoreKind.allCases)
    func accept(kind: StoreKind) throws {
        let (store, folder) = try kind.make()
        defer { folder?.remove() }
        let first = try acceptedJobs(store, newBatch("promo", sha: "aaa", jobs: 3))
        #expect(first.count == 3)
        #expect(first.allSatisfy { $0.state == .queued })
        guard case .duplicate(let existing) = try store.accept(newBatch("promo", sha: "aaa")) else { Issue.record("expected duplicate"); return }
        #expect(existing.name == "promo")
        guard case .accepted(let second, _) = try store.accept(newBatch("promo", sha: "bbb")) else { Issue.record("expected accepted"); return }
        #expect(second.name == "promo-2")
        #expect(second.outputDir == "2026-11-25/promo-2")
        guard case .accepted(let third, _) = try store.accept(newBatch("promo", sha: "aaa"), allowDuplicate: true, folderIsTaken: { $0.hasSuffix("/promo-3") }) else {
            Issue.record("expected accepted"); return
        }
        #expect(third.name == "promo-4")
        #expect(try store.counts()[.queued] == 7)
    }

    @Test("accepting many files at once: each as if alone, in order, and all or none", arguments: StoreKind.allCases)
    func acceptAll(kind: StoreKind) throws {
        let (store, folder) = try kind.make()
        defer { folder?.remove() }
        _ = try acceptedJobs(store, newBatch("old", sha: "old"))
        let outcomes = try store.acceptAll([newBatch("a", sha: "1"), newBatch("a", sha: "2"), newBatch("b", sha: "1"), newBatch("c", sha: "old")])
        let names = outcomes.map { outcome -> String in
            switch outcome {
            case .accepted(let batch, let jobs): return "accepted \(batch.name) (\(jobs.count))"
            case .duplicate(let existing): return "duplicate of \(existing.name)"
            }
        }
        // The second file with the first one's content is a duplicate of it, as it would be a moment later.
        #expect(names == ["accepted a (2)", "accepted a-2 (2)", "duplicate of a", "duplicate of old"])
        #expect(try store.counts()[.queued] == 6)

        // A batch that breaks a constraint (here two jobs of one name) takes the whole transaction with it.
        var broken = newBatch("d", sha: "3")
        broken.jobs.append(broken.jobs[0])
        #expect(throws: (any Error).self) { try store.acceptAll([newBatch("e", sha: "4"), broken]) }
        #expect(try store.counts()[.queued] == 6)
        #expect(try store.acceptAll([]).isEmpty)
    }

    @Test("a guarded transition refuses a job that something else moved first", arguments: StoreKind.allCases)
    func staleTransition(kind: StoreKind) throws {
        let (store, folder) = try kind.make()
        defer { folder?.remove() }
        let job = try acceptedJobs(store, newBatch())[0]
        try store.transition(job.id, from: .queued, to: .cancelled, event: "operator cancel")
        #expect(throws: StoreError.stale(jobID: job.id, expected: [.queued], actual: .cancelled)) {
            try store.transition(job.id, from: .queued, to: .uploading, event: "claim")
        }
        #expect(throws: StoreError.illegalTransition(from: .completed, to: .queued)) {
            try store.transition(job.id, from: .completed, to: .queued, event: "bad")
        }
    }

    @Test("claiming takes due jobs only, oldest first, and each once", arguments: StoreKind.allCases)
    func claim(kind: StoreKind) throws {
        let (store, folder) = try kind.make()
        defer { folder?.remove() }
        let now = Date()
        let jobs = try acceptedJobs(store, newBatch(jobs: 4))
        _ = try store.claim(limit: 1, now: now)
        try store.transition(jobs[0].id, from: .uploading, to: .queued, set: [.nextAttemptAt(now.addingTimeInterval(60))], event: "later")
        let claimed = try store.claim(limit: 10, now: now).claimed
        #expect(claimed.map(\.id) == [jobs[1].id, jobs[2].id, jobs[3].id])
        #expect(try store.claim(limit: 10, now: now).claimed.isEmpty)
        #expect(try store.nextDueTime()?.timeIntervalSince1970.rounded() == now.addingTimeInterval(60).timeIntervalSince1970.rounded())
        #expect(try store.claim(limit: 10, now: now.addingTimeInterval(61)).claimed.map(\.id) == [jobs[0].id])
    }

    @Test("a whole successful life, with its attempt and events", arguments: StoreKind.allCases)
    func lifecycle(kind: StoreKind) throws {
        let (store, folder) = try kind.make()
        defer { folder?.remove() }
        let job = try acceptedJobs(store, newBatch())[0]
        _ = try store.claim(limit: 1)
        try store.beginSubmit(job.id, input: #"{"prompt":"x"}"#)
        let submitted = try store.recordAccepted(job.id, request: request)
        #expect(submitted.requestId == "req-1" && submitted.attempts == 1 && submitted.submittedAt != nil)
        try store.markStarted(job.id)
        try store.notePoll(job.id, in: .inProgress, logs: ["a", "b"])
        try store.notePoll(job.id, in: .inProgress, logs: ["a", "b", "c"])
        try store.recordResult(job.id, from: .inProgress, result: FalResult(resultJSON: "{}", videoURL: "http://v", expectedBytes: 10, metrics: nil))
        let done = try store.recordDownloaded(job.id, video: DownloadedVideo(path: "/out/x.mp4", bytes: 10, sha256: "abc"), manifestPath: "/out/x.json")
        #expect(done.state == .completed)
        #expect(done.statusPolls == 2)
        let attempts = try store.attempts(of: job.id)
        #expect(attempts.map(\.outcome) == [.succeeded])
        #expect(attempts[0].requestId == "req-1" && attempts[0].counted && attempts[0].endedAt != nil)
        let events = try store.events(of: job.id)
        #expect(events.filter { $0.kind == .log }.map(\.message) == ["a", "b", "c"])
        #expect(events.filter { $0.kind == .state }.compactMap(\.toState) == [.queued, .uploading, .submitting, .inQueue, .inProgress, .downloading, .completed])
        #expect(try store.isKnownRequestID("req-1"))
        #expect(try !store.isKnownRequestID("req-2"))
    }

    @Test("a new request's log is recorded from its first line, after an earlier request of the job logged as many or more", arguments: StoreKind.allCases)
    func logOfNewRequest(kind: StoreKind) throws {
        let (store, folder) = try kind.make()
        defer { folder?.remove() }
        let job = try acceptedJobs(store, newBatch(jobs: 1))[0]
        let now = Date()
        _ = try store.claim(limit: 1, now: now)
        try store.beginSubmit(job.id, input: #"{"prompt":"x"}"#)
        try store.recordAccepted(job.id, request: request)
        try store.notePoll(job.id, in: .inQueue, logs: ["first 1", "first 2", "first 3"])
        try store.recordFalFailure(job.id, from: .inQueue, failure: FalFailure(error: StoredError(reason: "runner", message: "x"), retryAt: now), at: now)
        _ = try store.claim(limit: 1, now: now.addingTimeInterval(1))
        try store.beginSubmit(job.id, input: #"{"prompt":"x"}"#)
        try store.recordAccepted(job.id, request: StoredRequest(id: "req-2", statusURL: "http://s2", responseURL: "http://r2", cancelURL: "http://c2"))
        try store.notePoll(job.id, in: .inQueue, logs: ["second 1", "second 2"])
        try store.notePoll(job.id, in: .inQueue, logs: ["second 1", "second 2", "second 3"])
        let logs = try store.events(of: job.id).filter { $0.kind == .log }.map(\.message)
        #expect(logs == ["first 1", "first 2", "first 3", "second 1", "second 2", "second 3"])
        #expect(try store.job(job.id)?.logLines == 3)
    }

    @Test("refusals: a rate limit costs no attempt, a 5xx does, a 422 fails", arguments: StoreKind.allCases)
    func refusals(kind: StoreKind) throws {
        let (store, folder) = try kind.make()
        defer { folder?.remove() }
        let job = try acceptedJobs(store, newBatch(jobs: 1))[0]
        let later = Date().addingTimeInterval(5)
        for (outcome, counted) in [(AttemptOutcome.rateLimited, false), (.refused, true)] {
            _ = try store.claim(limit: 1, now: later.addingTimeInterval(10))
            try store.beginSubmit(job.id, input: "{}")
            try store.recordRefused(job.id, refusal: Refusal(outcome: outcome, counted: counted, error: StoredError(reason: "x", message: "m"), retryAt: later))
        }
        _ = try store.claim(limit: 1, now: later.addingTimeInterval(10))
        try store.beginSubmit(job.id, input: "{}")
        let failed = try store.recordRefused(
            job.id, refusal: Refusal(outcome: .refused, counted: true, error: StoredError(reason: "validation", message: "prompt too long", httpStatus: 422), retryAt: nil))
        #expect(failed.state == .failed)
        #expect(failed.attempts == 2)
        #expect(try store.attempts(of: job.id).map(\.outcome) == [.rateLimited, .refused, .refused])
        #expect(try store.attempts(of: job.id).last?.httpStatus == 422)
    }

    @Test("a crash while uploading or submitting is recovered without submitting again", arguments: StoreKind.allCases)
    func recovery(kind: StoreKind) throws {
        let (store, folder) = try kind.make()
        defer { folder?.remove() }
        let jobs = try acceptedJobs(store, newBatch(jobs: 3))
        _ = try store.claim(limit: 2)
        try store.beginSubmit(jobs[1].id, input: "{}")
        let moved = try store.recoverInterrupted()
        #expect(moved.requeued == 1 && moved.unknown == 1)
        #expect(try store.job(jobs[0].id)?.state == .queued)
        let unknown = try #require(try store.job(jobs[1].id))
        #expect(unknown.state == .submitUnknown && unknown.attempts == 1)
        try store.adopt(unknown.id, request: request)
        #expect(try store.job(unknown.id)?.state == .inQueue)
        #expect(try store.attempts(of: unknown.id).map(\.outcome) == [.adopted])
    }

    @Test("reconciliation gives up after its grace: queued again, flagged as a possible duplicate", arguments: StoreKind.allCases)
    func giveUp(kind: StoreKind) throws {
        let (store, folder) = try kind.make()
        defer { folder?.remove() }
        let job = try acceptedJobs(store, newBatch())[0]
        _ = try store.claim(limit: 1)
        try store.beginSubmit(job.id, input: "{}")
        try store.recordUnknown(job.id, error: StoredError(reason: "submit_outcome_unknown", message: "reset"))
        let requeued = try store.giveUpReconciling(job.id, graceDescription: "30 min")
        #expect(requeued.state == .queued && requeued.possibleDuplicate)
        #expect(try store.attempts(of: job.id).map(\.outcome) == [.lost])
    }

    @Test("the upload cache answers by content, storage origin and age", arguments: StoreKind.allCases)
    func uploads(kind: StoreKind) throws {
        let (store, folder) = try kind.make()
        defer { folder?.remove() }
        let now = Date()
        let fal = "https://rest.fal.ai"
        try store.recordUpload(UploadedImage(sha256: "s1", fileURL: "https://fal/u1", byteCount: 3, contentType: "image/png", origin: fal), at: now)
        #expect(try store.cachedUpload(sha256: "s1", origin: fal, notBefore: now.addingTimeInterval(-60)) == "https://fal/u1")
        #expect(try store.cachedUpload(sha256: "s1", origin: fal, notBefore: now.addingTimeInterval(60)) == nil)
        #expect(try store.cachedUpload(sha256: "s2", origin: fal, notBefore: .distantPast) == nil)
        // An upload made through an emulator that is gone is never handed to a run against another origin.
        #expect(try store.cachedUpload(sha256: "s1", origin: "http://127.0.0.1:4545", notBefore: .distantPast) == nil)
    }

    @Test("two processes write the same store file at once without 'database is locked'")
    func sharedFile() async throws {
        let directory = try TemporaryDirectory("shared")
        defer { directory.remove() }
        let state = directory.path + "/state"
        let store = try JobStore.open(directory: state)
        let specs = try SpecWriter.writeJobs(count: 40, in: directory.url.appendingPathComponent("jobs"), sharedImages: 1, prefix: "cli")
        // The other process: `kling-batch rerun` accepts each file in a transaction of its own, while this one writes too.
        var environment = ProcessInfo.processInfo.environment
        for name in ["KLING_BATCH_CONFIG", "STATE_DIRECTORY", "NOTIFY_SOCKET"] { environment.removeValue(forKey: name) }
        let other = try ChildProcess("kling-batch", ["rerun", "--state-dir", state] + specs, environment: environment)
        _ = try await other.waitForLine(startingWith: "accepted ")
        // Written while the other process is still accepting its files, and on after it, 50 rounds at least.
        let rounds = try Self.writeRounds(store, atLeast: 50, while: other.process)
        let status = await other.waitForExit()
        #expect(status == 0, "the other process: \(other.stderr.suffix(2000))")
        #expect(!other.stderr.contains("locked") && !other.stderr.contains("busy"), "\(other.stderr.suffix(2000))")
        #expect(other.stdout.components(separatedBy: "accepted ").count - 1 == 40, "\(other.stdout.suffix(2000))")
        let counts = try store.counts()
        #expect(counts.values.reduce(0, +) == rounds * 3 + 40, "\(rounds) batches of 3 from here and 40 one-job files from the other process")
        #expect(try store.batches().count == rounds + 40)
    }

    /// This process's share: batches accepted and claimed from, each a transaction of its own, until `other` has
    /// exited and at least `minimum` were written; how many were.
    static func writeRounds(_ store: JobStore, atLeast minimum: Int, while other: Process) throws -> Int {
        var round = 0
        while round < minimum || other.isRunning {
            _ = try acceptedJobs(store, newBatch("here-\(round)", jobs: 3))
            _ = try store.claim(limit: 2)
            round += 1
        }
        return round
    }

    @Test("a store written by a newer version is refused with a clear error")
    func newerSchema() throws {
        let directory = try TemporaryDirectory("newer")
        defer { directory.remove() }
        _ = try JobStore.open(directory: directory.path)
        let pool = try DatabasePool(path: directory.path + "/" + JobStore.fileName)
        try pool.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')") }
        #expect(throws: StoreError.self) { try JobStore.open(directory: directory.path) }
    }
}
