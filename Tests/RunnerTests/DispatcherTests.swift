import FalEmulator
import Foundation
import JobStore
@testable import Runner
import Testing
import TestSupport

@Suite("The dispatcher")
struct DispatcherTests {
    @Test("a job whose submit was refused goes back to the queue, is claimed again at once and completes: one request")
    func claimedAgain() async throws {
        let folder = try TemporaryDirectory("dispatcher")
        defer { folder.remove() }
        var configuration = fastConfiguration(in: folder)
        // A refused submit puts the job back in the queue due at once, so the dispatcher claims it straight away,
        // often before its executor has left (the state machine hands the claim to it: see its tests).
        configuration.retry.base = .zero
        configuration.retry.jitter = 0
        let settings = configuration
        let counters = try await EmulatorHarness.run(configure: { knobs in
            knobs.faults = [FaultRule(kind: .serverError503, probability: 1, routes: [.submit], limit: 1)]
        }) { harness in
            let fixture = try RunnerFixture(in: folder, specs: 1, configuration: settings, client: harness.client)
            let jobID = try await fixture.acceptSpecs()[0]
            try await Dispatcher(environment: fixture.environment, mode: .untilDone).run()
            #expect(try fixture.store.job(jobID)?.state == .completed)
            return await harness.emulator.state.counters()
        }
        #expect(counters.requestsCreated == 1)
        #expect(counters.faults(.serverError503) == 1)
    }

    @Test("a cancel asked while a runner holds the job before fal has it is honoured before the submit: nothing is paid")
    func cancelBeforeSubmit() async throws {
        let folder = try TemporaryDirectory("cancel")
        defer { folder.remove() }
        let settings = fastConfiguration(in: folder)
        let counters = try await EmulatorHarness.run { harness in
            let fixture = try RunnerFixture(in: folder, specs: 2, configuration: settings, client: harness.client)
            let (store, environment) = (fixture.store, fixture.environment)
            let ids = try await fixture.acceptSpecs()
            // Both claimed by a runner, which stopped before submitting (as a crash would leave them).
            #expect(try await store.claim(limit: 2).claimed.count == 2)
            // The operator's cancel meets a job a runner holds: it can only ask.
            #expect(try await JobCanceller(environment: environment).cancel(ids[0]) == .requested)
            try await Dispatcher(environment: environment, mode: .untilDone).run()
            let cancelled = try #require(try store.job(ids[0]))
            #expect(cancelled.state == .cancelled)
            #expect(cancelled.requestId == nil && cancelled.attempts == 0)
            #expect(cancelled.manifestPath != nil)
            #expect(try store.job(ids[1])?.state == .completed)
            return await harness.emulator.state.counters()
        }
        #expect(counters.requestsCreated == 1, "only the job nobody cancelled reached fal")
        #expect(counters.cancelCalls == 0)
    }

    @Test("while the downloads are behind, nothing new is submitted: finished videos do not pile up, paid for, behind a slow disk or link")
    func downloadsBehind() async throws {
        let folder = try TemporaryDirectory("backlog")
        defer { folder.remove() }
        var configuration = fastConfiguration(in: folder)
        configuration.concurrency = 4
        configuration.downloadConcurrency = 1
        let settings = configuration
        let counters = try await EmulatorHarness.run(configure: { knobs in knobs.runSeconds = 0 }) { harness in
            let fixture = try RunnerFixture(in: folder, specs: 16, configuration: settings, client: harness.client)
            let store = fixture.store
            _ = try await fixture.acceptSpecs()
            // The test holds the only download slot: every video fal finishes waits for it.
            try await fixture.environment.downloads.acquire()
            async let run: Void = Dispatcher(environment: fixture.environment, mode: .untilDone).run()
            // Settled: nothing at fal any more, yet jobs still queued. A claim needs an event (a download ending),
            // and none can end, so what was submitted by now is all that is submitted.
            let atFal: [JobState] = [.uploading, .submitting, .submitUnknown, .inQueue, .inProgress]
            var counts = try store.counts()
            let deadline = ContinuousClock.now + .seconds(60)
            while counts[.downloading, default: 0] == 0 || atFal.contains(where: { counts[$0, default: 0] > 0 }) {
                guard ContinuousClock.now < deadline else { throw HarnessError("never settled: \(counts)") }
                try await Task.sleep(for: .milliseconds(20))
                counts = try store.counts()
            }
            let submitted = await harness.emulator.state.counters().requestsCreated
            // Claims stop at two jobs past fal (twice the one download slot); the last claim took at most 4.
            #expect(submitted <= 1 + 4, "\(submitted) submitted while the downloads could not keep up")
            #expect(counts[.downloading, default: 0] == submitted && counts[.queued, default: 0] == 16 - submitted)
            fixture.environment.downloads.release()
            try await run
            #expect(try store.counts()[.completed] == 16)
            return await harness.emulator.state.counters()
        }
        #expect(counters.requestsCreated == 16 && counters.duplicateSubmissions == 0)
    }
}

