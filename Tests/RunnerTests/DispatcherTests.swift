import FalEmulator
import Foundation
import Synchronization
import JobStore
@testable import Runner
import Testing
import TestSupport

@Suite("The dispatcher")
struct DispatcherTests {
    @Test("a job claimed again while its executor is leaving is driven again by it, never dropped")
    func claimedWhileLeaving() async throws {
        let folder = try TemporaryDirectory("dispatcher")
        defer { folder.remove() }
        var configuration = fastConfiguration(in: folder)
        // A refused submit puts the job back in the queue due at once, so the dispatcher claims it straight away.
        configuration.retry.base = .zero
        configuration.retry.jitter = 0
        let settings = configuration
        let counters = try await EmulatorHarness.run(configure: { knobs in
            knobs.faults = [FaultRule(kind: .serverError503, probability: 1, routes: [.submit], limit: 1)]
        }) { harness in
            let fixture = try RunnerFixture(in: folder, specs: 1, configuration: settings, client: harness.client)
            let (store, environment) = (fixture.store, fixture.environment)
            let jobID = try fixture.acceptSpecs()[0]
            let heldOpen = Mutex(false)
            // The first time the executor leaves (the job back in the queue after the 503), it waits until the
            // dispatcher has claimed the job again: exactly the moment a claim used to be dropped.
            let dispatcher = Dispatcher(environment: environment, mode: .untilDone, beforeLeaving: { id in
                guard id == jobID, heldOpen.withLock({ held in defer { held = true }; return !held }) else { return }
                let deadline = ContinuousClock.now + .seconds(20)
                while (try? store.job(id)?.state) == .queued, ContinuousClock.now < deadline { await Task.yield() }
                #expect((try? store.job(id)?.state) != .queued, "the dispatcher never claimed the job again")
            })
            try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    try await dispatcher.run()
                    return true
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(60))
                    return false
                }
                let finished = try await group.next()!
                group.cancelAll()
                #expect(finished, "the run never ended: a claimed job was left with nobody driving it")
            }
            #expect(heldOpen.withLock { $0 })
            #expect(try store.job(jobID)?.state == .completed)
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
            let ids = try fixture.acceptSpecs()
            // Both claimed by a runner, which stopped before submitting (as a crash would leave them).
            #expect(try store.claim(limit: 2).count == 2)
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
