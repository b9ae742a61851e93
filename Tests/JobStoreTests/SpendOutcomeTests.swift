import Foundation
import JobStore
import KlingCore
import Testing
import TestSupport

/// What each ledger row became, decided in the transaction of its job's move, and kept after `purge`.
@Suite("The spend ledger: how each paid request ended")
struct SpendOutcomeTests {
    let noon = ISO8601DateFormatter().date(from: "2026-11-25T12:00:00Z")!
    let result = FalResult(resultJSON: "{}", videoURL: "https://v", expectedBytes: 1, metrics: nil)

    func send(_ store: JobStore, _ job: JobRecord, as id: String) throws {
        try store.beginSubmit(job.id, input: "{\"job\":\(job.id)}", origin: "https://queue.fal.run", at: noon)
        try store.recordAccepted(job.id, request: StoredRequest(id: id, statusURL: "s", responseURL: "r", cancelURL: "c"), at: noon)
    }

    func complete(_ store: JobStore, _ job: JobRecord) throws {
        try store.recordResult(job.id, from: .inQueue, result: result, at: noon)
        try store.recordDownloaded(job.id, video: DownloadedVideo(path: "/v\(job.id)", bytes: 1, sha256: "x"), manifestPath: "/m", at: noon)
    }

    @Test("completed, failed at fal then paid again, cancelled at fal, lost then resent: each row says how its request ended, also after purge", arguments: StoreKind.allCases)
    func outcomes(kind: StoreKind) throws {
        let (store, folder) = try kind.make()
        defer { folder?.remove() }
        let jobs = try acceptedJobs(store, newBatch("mix", jobs: 4))
        _ = try store.claim(limit: 4, now: noon)
        try send(store, jobs[0], as: "done")
        try complete(store, jobs[0])

        try send(store, jobs[1], as: "broke")
        try store.recordFalFailure(jobs[1].id, from: .inQueue, failure: FalFailure(error: StoredError(reason: "runner", message: "x"), retryAt: noon), at: noon)
        #expect(try store.spend(ofJob: jobs[1].id).map(\.outcome) == [.failed], "a request that failed is failed money at once")
        _ = try store.claim(limit: 1, now: noon)
        try send(store, jobs[1], as: "fixed")
        try complete(store, jobs[1])

        try send(store, jobs[2], as: "stopped")
        try store.recordCancelled(jobs[2].id, from: .inQueue, note: "cancelled at fal", manifestPath: "/m", at: noon)

        try store.beginSubmit(jobs[3].id, input: "{}", at: noon)
        try store.recordUnknown(jobs[3].id, error: StoredError(reason: "reset", message: "no answer"), at: noon)
        try store.giveUpReconciling(jobs[3].id, graceDescription: "30 min", at: noon)
        _ = try store.claim(limit: 1, now: noon)
        try send(store, jobs[3], as: "resent")
        #expect(try store.spend(ofJob: jobs[3].id).map(\.outcome) == [nil, nil], "open while the request runs")
        try complete(store, jobs[3])

        func check(_ ledger: [SpendRecord]) {
            #expect(ledger.map(\.requestId) == ["done", "broke", "fixed", "stopped", nil, "resent"])
            #expect(ledger.map(\.outcome) == [.completed, .failed, .completed, .cancelled, .completed, .completed])
            #expect(ledger.map(\.possibleDuplicate) == [false, false, false, false, true, false])
            #expect(ledger.allSatisfy { $0.seconds == 5 && $0.micros == 560_000 })
        }
        check(try store.ledger())
        #expect(try store.spend(ofJob: jobs[1].id).count == 2, "the manifest of a job paid twice counts both")
        #expect(try store.purge(finishedBefore: noon.addingTimeInterval(1)).jobs == 4)
        check(try store.ledger(since: nil, until: nil))
        #expect(try store.ledger(since: noon.addingTimeInterval(1), until: nil).isEmpty)
        #expect(try store.ledger(since: noon, until: noon.addingTimeInterval(1)).count == 6)
    }

    @Test("a lost submit never found: failed money when its job fails or is cancelled, and a possible duplicate once an operator sends the job again", arguments: StoreKind.allCases)
    func lostThenRetried(kind: StoreKind) throws {
        let (store, folder) = try kind.make()
        defer { folder?.remove() }
        let jobs = try acceptedJobs(store, newBatch("lost", jobs: 2))
        _ = try store.claim(limit: 2, now: noon)
        for job in jobs {
            try store.beginSubmit(job.id, input: "{\"lost\":\(job.id)}", at: noon)
            try store.recordUnknown(job.id, error: StoredError(reason: "reset", message: "no answer"), at: noon)
        }
        // The first job is at its last attempt: it fails, and nothing was sent twice (yet).
        try store.giveUpReconciling(jobs[0].id, graceDescription: "30 min", maxAttempts: 1, at: noon)
        #expect(try store.spend(ofJob: jobs[0].id).map(\.outcome) == [.failed])
        #expect(try store.spend(ofJob: jobs[0].id).map(\.possibleDuplicate) == [false])
        try store.requeue(jobs[0].id, from: .failed, route: .submit, at: noon)
        #expect(try store.spend(ofJob: jobs[0].id).map(\.possibleDuplicate) == [true], "sending it again may pay for it twice")
        // The second is sent again, then cancelled at fal: only its own request is "cancelled at fal".
        try store.giveUpReconciling(jobs[1].id, graceDescription: "30 min", at: noon)
        _ = try store.claim(limit: 2, now: noon)
        try send(store, jobs[1], as: "second")
        try store.recordCancelled(jobs[1].id, from: .inQueue, note: "cancelled at fal", manifestPath: "/m", at: noon)
        #expect(try store.spend(ofJob: jobs[1].id).map(\.outcome) == [.failed, .cancelled])
        #expect(try store.spend(ofJob: jobs[1].id).map(\.possibleDuplicate) == [true, false])
    }

    @Test("retry that re-downloads a failed download claims its request's failed row for the completion", arguments: StoreKind.allCases)
    func redownload(kind: StoreKind) throws {
        let (store, folder) = try kind.make()
        defer { folder?.remove() }
        let job = try acceptedJobs(store, newBatch("dl", jobs: 1))[0]
        _ = try store.claim(limit: 1, now: noon)
        try send(store, job, as: "paid")
        try store.recordResult(job.id, from: .inQueue, result: result, at: noon)
        try store.fail(job.id, from: .downloading, error: StoredError(reason: "download", message: "cut"), retryBy: .download, at: noon)
        #expect(try store.ledger().map(\.outcome) == [.failed])
        try store.requeue(job.id, from: .failed, route: .download, at: noon)
        let claimed = try store.claim(limit: 1, now: noon).claimed
        #expect(claimed.first?.state == .downloading, "\(claimed)")
        try store.recordDownloaded(job.id, video: DownloadedVideo(path: "/v", bytes: 1, sha256: "x"), manifestPath: "/m", at: noon)
        #expect(try store.ledger().map(\.outcome) == [.completed])
    }
}
