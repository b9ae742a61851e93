import FalClient
import FalEmulator
import Foundation
import JobStore
import KlingCore
import KlingSpec
import Runner
import Testing
import TestSupport

/// `retry` finishes failed jobs for free where fal still has the result, and submits again only what it lost.
@Suite("Retry without paying twice", .serialized)
struct RetryRouteTests {
    /// Runs `run --once` on `folder/jobs` twice against one emulator, calling `between` on the store in between.
    func twoRuns(
        emulator configure: @escaping @Sendable (inout EmulatorConfiguration) -> Void,
        runner adjust: @escaping @Sendable (inout RunnerConfiguration) -> Void = { _ in },
        jobs: Int = 2,
        between: @escaping @Sendable (JobStore, FalEmulator) async throws -> Void
    ) async throws -> (first: RunReport, second: RunReport, counters: EmulatorCounters, folder: TemporaryDirectory) {
        let folder = try TemporaryDirectory("retry-route")
        let specs = folder.url.appendingPathComponent("jobs")
        try SpecWriter.writeJobs(count: jobs, in: specs, sharedImages: 1)
        var settings = fastConfiguration(in: folder)
        adjust(&settings)
        let configuration = settings
        return try await EmulatorHarness.run(configure: { knobs in
            knobs.runSeconds = 0.05
            configure(&knobs)
        }) { harness in
            let first = try await RunOnce.run(
                configuration: configuration, client: harness.client, specPaths: [specs.path], validator: SpecValidator(), logger: quietLogger())
            try await between(try JobStore.open(directory: configuration.stateDirectory), harness.emulator)
            let second = try await RunOnce.run(
                configuration: configuration, client: harness.client, specPaths: [], validator: SpecValidator(), logger: quietLogger())
            return (first, second, await harness.emulator.state.counters(), folder)
        }
    }

    @Test("a download that kept failing leaves the job failed with route 'download'; retry downloads it again with no new submission")
    func redownload() async throws {
        let result = try await twoRuns(emulator: { knobs in
            // Every try of the first job's download is cut (1 try + 5 resumes each), then the faults run out.
            knobs.faults = [FaultRule(kind: .truncatedDownload, probability: 1, routes: [.download], limit: 6)]
        }, runner: { $0.maxDownloadTries = 1; $0.concurrency = 1 }, jobs: 1) { store, _ in
            let failed = try store.jobs(in: [.failed])
            #expect(failed.count == 1 && failed.first?.retryBy == .download, "\(failed.map { ($0.lastError, $0.retryBy) })")
            for job in failed { try store.requeue(job.id, from: .failed, route: .download) }
        }
        defer { result.folder.remove() }
        #expect(result.first.failed.count == 1)
        #expect(result.second.succeeded, "\(result.second.summary)")
        #expect(result.counters.submitCalls == 1 && result.counters.requestsCreated == 1, "retry submitted again")
        #expect(result.counters.faults(.truncatedDownload) == 6)
    }

    @Test("fal finished the request but its result could not be fetched: failed with route 'result', not resubmitted; retry fetches it again for free")
    func refetch() async throws {
        let result = try await twoRuns(emulator: { knobs in
            knobs.faults = [FaultRule(kind: .serverError500, probability: 1, routes: [.result], limit: 3)]
        }, runner: { $0.maxResultFetches = 3; $0.concurrency = 1 }, jobs: 1) { store, _ in
            let failed = try store.jobs(in: [.failed])
            #expect(failed.count == 1 && failed.first?.retryBy == .result, "\(failed.map { ($0.lastError, $0.retryBy) })")
            for job in failed { try store.requeue(job.id, from: .failed, route: .result) }
        }
        defer { result.folder.remove() }
        #expect(result.second.succeeded, "\(result.second.summary)")
        #expect(result.counters.requestsCreated == 1, "a paid result was submitted again instead of fetched again")
        #expect(result.counters.faults(.serverError500) == 3)
    }

    @Test("a video fal no longer has fails with route 'paid_resubmit'; only that resubmission is a second request")
    func resultGone() async throws {
        let result = try await twoRuns(emulator: { knobs in
            knobs.resultLifetimeSeconds = 0
        }, jobs: 1) { store, emulator in
            let failed = try store.jobs(in: [.failed])
            #expect(failed.count == 1 && failed.first?.retryBy == .paidResubmit, "\(failed.map { ($0.lastError, $0.retryBy) })")
            await emulator.state.configure { $0.resultLifetimeSeconds = nil }
            for job in failed { _ = try await store.requeue(job.id, from: .failed, route: .paidResubmit) }
        }
        defer { result.folder.remove() }
        #expect(result.second.succeeded, "\(result.second.summary)")
        #expect(result.counters.requestsCreated == 2, "the explicit paid resubmission is the only second request")
    }

    @Test("a job put back to fetch a result at an origin that is gone is neither claimed nor driven; and the run ends, saying so")
    func foreignResult() async throws {
        let folder = try TemporaryDirectory("retry-foreign")
        defer { folder.remove() }
        let specs = folder.url.appendingPathComponent("jobs")
        try SpecWriter.writeJobs(count: 2, in: specs, sharedImages: 1)
        let configuration = fastConfiguration(in: folder)
        let store = try JobStore.open(directory: configuration.stateDirectory)
        let ingestor = BatchIngestor(store: store, validator: SpecValidator(), layout: OutputLayout(root: configuration.outputDirectory), prices: .published)
        var ids: [Int64] = []
        for file in try SpecFiles.expand([specs.path]).files {
            guard case .accepted(_, let jobs, _) = try await ingestor.ingest(file) else { throw HarnessError("not accepted") }
            ids.append(jobs[0].id)
        }
        // Both were sent to an emulator that is gone; one failed fetching its result, one downloading its video.
        let gone = "http://127.0.0.1:9"
        _ = try await store.claim(limit: 2)
        for (index, id) in ids.enumerated() {
            _ = try await store.beginSubmit(id, input: "{\"n\":\(index)}", origin: gone)
            _ = try await store.recordAccepted(id, request: StoredRequest(id: "gone-\(index)", statusURL: gone + "/s", responseURL: gone + "/r", cancelURL: gone + "/c"))
        }
        _ = try await store.fail(ids[0], from: .inQueue, error: StoredError(reason: "http_500", message: "result"), retryBy: .result)
        _ = try await store.requeue(ids[0], from: .failed, route: .result)
        #expect(try await store.claim(limit: 2, budget: SpendLimits(), origin: "http://127.0.0.1:1234").claimed.isEmpty)
        #expect(try store.foreignJobs(origin: "http://127.0.0.1:1234") == [gone: ids])

        let report = try await EmulatorHarness.run { harness in
            try await RunOnce.run(configuration: configuration, client: harness.client, specPaths: [], validator: SpecValidator(), logger: quietLogger())
        }
        #expect(report.foreign == [gone: ids])
        #expect(!report.succeeded)
        #expect(try store.job(ids[0])?.state == .queued, "the foreign fetch was left alone")
        #expect(try store.job(ids[1])?.state == .inQueue)
    }
}
