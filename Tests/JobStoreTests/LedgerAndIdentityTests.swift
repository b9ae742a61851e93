import Foundation
import GRDB
import JobStore
import KlingCore
import Testing
import TestSupport

@Suite("The spend ledger, retry routes and the store's identity")
struct LedgerAndIdentityTests {
    let noon = ISO8601DateFormatter().date(from: "2026-11-25T12:00:00Z")!

    /// Claims, begins and records `count` accepted submits; returns the jobs.
    func submitted(_ store: JobStore, _ stem: String, count: Int, budget: SpendLimits = SpendLimits()) throws -> [JobRecord] {
        let jobs = try acceptedJobs(store, newBatch(stem, jobs: count))
        _ = try store.claim(limit: count, budget: budget, now: noon)
        for (index, job) in jobs.enumerated() {
            try store.beginSubmit(job.id, input: "{\"n\":\(index)}", origin: "https://queue.fal.run", at: noon)
            try store.recordAccepted(job.id, request: StoredRequest(id: "\(stem)-\(index)", statusURL: "s", responseURL: "r", cancelURL: "c"), at: noon)
        }
        return jobs
    }

    @Test("purge forgets jobs, not money: after purging every finished job, today's spend and the daily budget still count what was sent", arguments: StoreKind.allCases)
    func purgeKeepsSpend(kind: StoreKind) throws {
        let (store, folder) = try kind.make()
        defer { folder?.remove() }
        let budget = SpendLimits(perDay: USD(micros: 2_000_000))
        let jobs = try submitted(store, "sent", count: 3, budget: budget)
        for job in jobs {
            try store.recordResult(job.id, from: .inQueue, result: FalResult(resultJSON: "{}", videoURL: "https://v", expectedBytes: 1, metrics: nil), at: noon)
            try store.recordDownloaded(job.id, video: DownloadedVideo(path: "/v", bytes: 1, sha256: "x"), manifestPath: "/m", at: noon)
        }
        #expect(try store.spending(now: noon).todayMicros == 1_680_000)
        let purged = try store.purge(finishedBefore: noon.addingTimeInterval(1))
        #expect(purged.jobs == 3 && purged.batches == 1)
        #expect(try store.spending(now: noon).todayMicros == 1_680_000, "purge reset today's spend")
        #expect(try store.ledger().count == 3)
        _ = try acceptedJobs(store, newBatch("more", jobs: 2))
        let claim = try store.claim(limit: 2, budget: budget, now: noon)
        #expect(claim.claimed.isEmpty && claim.held.count == 2, "$1.68 sent + $0.56 > $2.00: the budget still holds after purge")
    }

    @Test("every submission is spend: a lost answer counts (once, confirmed when adopted), a refusal that never reached fal does not, and a second paid submission counts again", arguments: StoreKind.allCases)
    func everySubmissionCounts(kind: StoreKind) throws {
        let (store, folder) = try kind.make()
        defer { folder?.remove() }
        let jobs = try acceptedJobs(store, newBatch("s", jobs: 3))
        _ = try store.claim(limit: 3, budget: SpendLimits(), now: noon)
        for job in jobs { try store.beginSubmit(job.id, input: "{}", at: noon) }
        try store.recordUnknown(jobs[0].id, error: StoredError(reason: "reset", message: "no answer"), at: noon)
        #expect(try store.spending(now: noon).todayMicros == 3 * 560_000, "two reserved, one possibly sent")
        try store.adopt(jobs[0].id, request: request, at: noon)
        #expect(try store.ledger().map(\.kind) == [.accepted], "adopting confirms the row counted for the lost answer")
        try store.recordRefused(jobs[1].id, refusal: Refusal(outcome: .notSent, counted: false, deferral: true, error: StoredError(reason: "t", message: "refused"), retryAt: nil), at: noon)
        #expect(try store.spending(now: noon).todayMicros == 2 * 560_000, "a job that ended without reaching fal holds nothing")
        try store.recordAccepted(jobs[2].id, request: StoredRequest(id: "req-2", statusURL: "s", responseURL: "r", cancelURL: "c"), at: noon)
        try store.fail(jobs[2].id, from: .inQueue, error: StoredError(reason: "gone", message: "404"), retryBy: .paidResubmit, at: noon)
        try store.requeue(jobs[2].id, from: .failed, route: .paidResubmit, at: noon)
        _ = try store.claim(limit: 1, budget: SpendLimits(), now: noon)
        try store.beginSubmit(jobs[2].id, input: "{}", at: noon)
        try store.recordAccepted(jobs[2].id, request: StoredRequest(id: "req-3", statusURL: "s", responseURL: "r", cancelURL: "c"), at: noon)
        #expect(try store.spending(now: noon).todayMicros == 3 * 560_000, "the paid resubmission counts as a second payment")
        #expect(try store.ledger().filter { $0.jobId == jobs[2].id }.count == 2)
    }

    @Test("retry routes: download and fetch keep the request and are claimed without a submit; submit routes start over", arguments: StoreKind.allCases)
    func retryRoutes(kind: StoreKind) throws {
        let (store, folder) = try kind.make()
        defer { folder?.remove() }
        let jobs = try submitted(store, "r", count: 3)
        try store.recordResult(jobs[0].id, from: .inQueue, result: FalResult(resultJSON: "{}", videoURL: "https://v/0", expectedBytes: 9, metrics: nil), at: noon)
        try store.fail(jobs[0].id, from: .downloading, error: StoredError(reason: "transport", message: "cut"), retryBy: .download, at: noon)
        try store.fail(jobs[1].id, from: .inQueue, error: StoredError(reason: "http_500", message: "result"), retryBy: .result, at: noon)
        try store.recordFalFailure(jobs[2].id, from: .inQueue, failure: FalFailure(error: StoredError(reason: "runner", message: "failed"), retryAt: nil), at: noon)
        #expect(try store.jobs(in: [.failed]).map { $0.retryBy } == [.download, .result, .submit])

        try store.requeue(jobs[0].id, from: .failed, route: .download, at: noon)
        try store.requeue(jobs[1].id, from: .failed, route: .result, at: noon)
        try store.requeue(jobs[2].id, from: .failed, route: .submit, at: noon)
        let claimed = try store.claim(limit: 3, budget: SpendLimits(), now: noon).claimed
        let states = Dictionary(uniqueKeysWithValues: claimed.map { ($0.id, $0) })
        #expect(states[jobs[0].id]?.state == .downloading && states[jobs[0].id]?.videoUrl == "https://v/0")
        #expect(states[jobs[1].id]?.state == .inQueue && states[jobs[1].id]?.requestId == "r-1")
        #expect(states[jobs[2].id]?.state == .uploading && states[jobs[2].id]?.requestId == nil && states[jobs[2].id]?.attempts == 0)
        #expect(try store.ledger().count == 3, "nothing was submitted by the free retries")
    }

    @Test("a store opened for the other purpose, one that vanished, one emptied, one replaced: each refused, none recreated")
    func identity() throws {
        let folder = try TemporaryDirectory("identity")
        defer { folder.remove() }
        let path = folder.path + "/" + JobStore.fileName
        let made = try JobStore.open(directory: folder.path)
        #expect(made.identity.purpose == .real)
        #expect(throws: StoreError.self) { try JobStore.open(directory: folder.path, purpose: .simulated) }
        #expect(try JobStore.open(directory: folder.path, purpose: nil).identity == made.identity)
        #expect(made.checkFile() == .intact)

        try FileManager.default.moveItem(atPath: path, toPath: path + ".moved")
        #expect(made.checkFile() == .deleted)
        #expect(refusal { try JobStore.open(directory: folder.path) }?.contains("is gone") == true)
        #expect(!FileManager.default.fileExists(atPath: path), "a vanished store was recreated")

        _ = FileManager.default.createFile(atPath: path, contents: Data())
        #expect(made.checkFile() == .replaced(FileID(path: path)!))
        #expect(refusal { try JobStore.open(directory: folder.path) }?.contains("empty (0-byte)") == true)

        _ = try JobStore.reset(directory: folder.path)
        #expect(try JobStore.open(directory: folder.path).identity != made.identity, "after reset a new store is made on purpose")

        // Another store's file where this folder's used to be (both closed, as after a restart).
        let mine = try TemporaryDirectory("identity-mine")
        let other = try TemporaryDirectory("identity-other")
        defer { mine.remove(); other.remove() }
        for directory in [mine, other] { _ = try JobStore.open(directory: directory.path) }
        try FileManager.default.removeItem(atPath: mine.path + "/" + JobStore.fileName)
        try FileManager.default.copyItem(atPath: other.path + "/" + JobStore.fileName, toPath: mine.path + "/" + JobStore.fileName)
        #expect(refusal { try JobStore.open(directory: mine.path) }?.contains("not store") == true)
        #expect(refusal { try JobStore.open(directory: folder.path + "/missing", mode: .existing) }?.contains("no job store") == true)
    }

    @Test("a full disk is StoreError.unavailable: nothing changes, and the same call works once there is room", .enabled(if: Tmpfs.isAvailable, "needs root to mount a tmpfs"))
    func fullDisk() throws {
        let folder = try TemporaryDirectory("store-full")
        defer { folder.remove() }
        let disk = try Tmpfs(at: folder.path + "/state", megabytes: 4)
        defer { disk.unmount() }
        let store = try JobStore.open(directory: disk.path)
        let jobs = try acceptedJobs(store, newBatch("f", jobs: 2))
        try disk.fill()
        var failure: StoreError?
        do {
            for index in 0..<2000 { _ = try store.accept(newBatch("more-\(index)", jobs: 20)) }
        } catch let error as StoreError {
            failure = error
        }
        guard case .unavailable(let detail)? = failure else { Issue.record("no unavailable error: \(String(describing: failure))"); return }
        #expect(detail.kind == .full && failure?.isTransient == true)
        #expect(throws: StoreError.self) { try store.probeWrite() }
        try disk.resize(megabytes: 64)
        try store.probeWrite()
        #expect(try store.job(jobs[0].id)?.state == .queued)
    }

    func refusal(_ body: () throws -> JobStore) -> String? {
        do {
            _ = try body()
            return nil
        } catch let error as StoreError {
            guard case .refused = error else { return nil }
            return error.description
        } catch {
            return nil
        }
    }
}

@Suite("Opening stores made by older versions, and on full disks")
struct StoreUpgradeTests {
    /// A store as version 2 left it: no identity, no ledger, no origins, no marker.
    func versionTwoStore(in directory: String, _ fill: (JobStore) throws -> Void) throws {
        do {
            let store = try JobStore.open(directory: directory)
            try fill(store)
        }
        let queue = try DatabaseQueue(path: directory + "/" + JobStore.fileName)
        try queue.write { db in
            try db.execute(sql: "DROP TABLE meta; DROP TABLE spend")
            for column in ["fal_origin", "retry_by", "resume"] { try db.execute(sql: "ALTER TABLE job DROP COLUMN \(column)") }
            try db.execute(sql: "ALTER TABLE upload DROP COLUMN origin")
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v3-identity-ledger-origins'")
            // v5 comes after v3 and needs the ledger v3 makes: it is run again too.
            for column in ["submit_options", "video_duration_ms", "video_width", "video_height", "needs_review"] {
                try db.execute(sql: "ALTER TABLE job DROP COLUMN \(column)")
            }
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v5-accounting'")
        }
        try FileManager.default.removeItem(atPath: directory + "/kling-batch.store-id")
    }

    @Test("a store of an older version is taken as real whoever opens it first: --simulate cannot claim it; its paid attempts become ledger rows, emulator ones do not")
    func upgrade() throws {
        let folder = try TemporaryDirectory("upgrade")
        defer { folder.remove() }
        let noon = ISO8601DateFormatter().date(from: "2026-11-20T12:00:00Z")!
        try versionTwoStore(in: folder.path) { store in
            let jobs = try acceptedJobs(store, newBatch("old", jobs: 3))
            _ = try store.claim(limit: 3, now: noon)
            // Job 1 failed at fal, then was paid again and finished: two attempts that reached fal.
            try store.beginSubmit(jobs[0].id, input: "{}", at: noon)
            try store.recordAccepted(jobs[0].id, request: StoredRequest(id: "a1", statusURL: "https://queue.fal.run/x/requests/a1/status", responseURL: "r", cancelURL: "c"), at: noon)
            try store.recordFalFailure(jobs[0].id, from: .inQueue, failure: FalFailure(error: StoredError(reason: "runner", message: "x"), retryAt: noon), at: noon)
            _ = try store.claim(limit: 1, now: noon)
            try store.beginSubmit(jobs[0].id, input: "{}", at: noon)
            try store.recordAccepted(jobs[0].id, request: StoredRequest(id: "a2", statusURL: "https://queue.fal.run/x/requests/a2/status", responseURL: "r", cancelURL: "c"), at: noon)
            // Job 2 went to an emulator (an old --simulate run in the same store).
            try store.beginSubmit(jobs[1].id, input: "{}", at: noon)
            try store.recordAccepted(jobs[1].id, request: StoredRequest(id: "e1", statusURL: "http://127.0.0.1:4545/x/requests/e1/status", responseURL: "r", cancelURL: "c"), at: noon)
        }
        #expect(throws: StoreError.self) { try JobStore.open(directory: folder.path, purpose: .simulated) }
        let store = try JobStore.open(directory: folder.path)
        #expect(store.identity.purpose == .real)
        let ledger = try store.ledger()
        #expect(ledger.map(\.requestId) == ["a1", "a2"], "\(ledger)")
        #expect(ledger.allSatisfy { $0.day == "2026-11-20" })
        #expect(ledger.map(\.outcome) == [.failed, nil], "v5: the request that failed at fal is failed money; the running one is open")
        #expect(ledger.map(\.seconds) == [5, 5])
        #expect(try store.job(3)?.reservedMicros == 560_000, "job 3, claimed but not sent, keeps its reservation")
        #expect(try store.jobs(in: [.inQueue]).first { $0.requestId == "e1" }?.falOrigin == "http://127.0.0.1:4545")
    }

    @Test("a first run on a full disk leaves no empty database behind; once there is room, the store is made", .enabled(if: Tmpfs.isAvailable, "needs root to mount a tmpfs"))
    func firstRunOnFullDisk() throws {
        let folder = try TemporaryDirectory("first-full")
        defer { folder.remove() }
        let disk = try Tmpfs(at: folder.path + "/state", megabytes: 1)
        defer { disk.unmount() }
        try disk.fill()
        #expect(throws: StoreError.self) { try JobStore.open(directory: disk.path) }
        let left = try FileManager.default.contentsOfDirectory(atPath: disk.path).filter { $0 != ".filler" }
        #expect(left.isEmpty, "left behind: \(left)")
        try disk.resize(megabytes: 16)
        let store = try JobStore.open(directory: disk.path)
        #expect(FileManager.default.fileExists(atPath: disk.path + "/kling-batch.store-id"))
        #expect(try JobStore.open(directory: disk.path).identity == store.identity)
    }

    @Test("each attempt names the runner that sent it; a store from before v8 keeps its attempts, naming none")
    func attemptedBy() throws {
        let folder = try TemporaryDirectory("attempted-by")
        defer { folder.remove() }
        let noon = ISO8601DateFormatter().date(from: "2026-11-20T12:00:00Z")!
        let request = { (id: String) in StoredRequest(id: id, statusURL: "https://queue.fal.run/x/requests/\(id)/status", responseURL: "r", cancelURL: "c") }
        do {
            let store = try JobStore.open(directory: folder.path)
            let jobs = try acceptedJobs(store, newBatch("runners", jobs: 1))
            _ = try store.claim(limit: 1, now: noon)
            try store.beginSubmit(jobs[0].id, input: "{}", at: noon)
            try store.recordAccepted(jobs[0].id, request: request("a1"), at: noon)
            try store.recordFalFailure(jobs[0].id, from: .inQueue, failure: FalFailure(error: StoredError(reason: "runner", message: "x"), retryAt: noon), at: noon)
        }
        // Undo v8, as a store written by the version before it.
        let queue = try DatabaseQueue(path: folder.path + "/" + JobStore.fileName)
        try queue.write { db in
            try db.execute(sql: "ALTER TABLE attempt DROP COLUMN attempted_by")
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v8-attempted-by'")
        }
        try queue.close()
        let store = try JobStore.open(directory: folder.path)
        let job = try #require(try store.jobs(in: [.queued]).first)
        _ = try store.claim(limit: 1, now: noon)
        try store.beginSubmit(job.id, input: "{}", runner: "render-02-0a1b2c", at: noon)
        try store.recordAccepted(job.id, request: request("a2"), at: noon)
        #expect(try store.attempts(of: job.id).map(\.attemptedBy) == [nil, "render-02-0a1b2c"])
    }
}

