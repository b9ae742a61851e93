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
}
