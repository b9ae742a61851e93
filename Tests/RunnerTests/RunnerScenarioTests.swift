import FalClient
import FalEmulator
import Foundation
import JobStore
import KlingCore
import Runner
import Testing
import TestSupport

@Suite("run --once against the emulator", .serialized)
struct RunnerScenarioTests {
    @Test("100 jobs with shared images: 100 playable videos with manifests, each distinct image uploaded once")
    func hundredJobs() async throws {
        let scenario = try await runScenario { try SpecWriter.writeJobs(count: 100, in: $0, sharedImages: 3) }
        defer { scenario.folder.remove() }
        #expect(scenario.report.succeeded, "\(scenario.report.summary)")
        #expect(scenario.report.completed.count == 100)
        let outputs = try scenario.outputs()
        #expect(Set(outputs.map(\.video)).count == 100)
        for (video, manifest) in outputs {
            #expect(try MP4Inspector(file: video).isPlayable)
            #expect(manifest["state"] == "completed")
            #expect(manifest["video"]?["sha256"]?.stringValue?.count == 64)
            #expect(manifest["local_images"]?.arrayValue?.allSatisfy { $0["uploaded_url"]?.stringValue != nil } == true)
        }
        // 3 shared images + one of its own per job.
        #expect(scenario.counters.uploadPuts == 103)
        #expect(scenario.counters.uploadInitiations == 103)
        #expect(scenario.counters.requestsCreated == 100)
        #expect(scenario.counters.duplicateSubmissions == 0)
        #expect(scenario.counters.maxActiveRequests <= scenario.configuration.concurrency)
    }

    @Test("with 5xx, 429, resets, truncated downloads and bad JSON at 10% each, every job completes and none is paid twice")
    func faults() async throws {
        let scenario = try await runScenario(emulator: { knobs in
            knobs.seed = 42
            knobs.faults = [
                FaultRule(kind: .serverError503, probability: 0.05), FaultRule(kind: .serverError500, probability: 0.05),
                FaultRule(kind: .rateLimit, probability: 0.1), FaultRule(kind: .connectionReset, probability: 0.1),
                FaultRule(kind: .truncatedDownload, probability: 0.1), FaultRule(kind: .nonJSON, probability: 0.1),
            ]
        }, runner: { $0.concurrencyRecovery = .milliseconds(100) }) { try SpecWriter.writeJobs(count: 60, in: $0, sharedImages: 4) }
        defer { scenario.folder.remove() }
        #expect(scenario.report.succeeded, "\(scenario.report.summary)")
        #expect(scenario.report.completed.count == 60)
        let counters = scenario.counters
        #expect(counters.duplicateSubmissions == 0, "a job was paid for twice")
        #expect(counters.submissionsPerBody.values.allSatisfy { $0 == 1 })
        for kind in [FaultKind.serverError503, .serverError500, .rateLimit, .connectionReset, .truncatedDownload, .nonJSON] {
            #expect(counters.faults(kind) > 0, "\(kind) was never injected")
        }
        for (video, _) in try scenario.outputs() { #expect(try MP4Inspector(file: video).isPlayable) }
    }

    @Test("a 422 fails its job after exactly one submission with the field and message in its manifest; the rest of the batch completes",
          arguments: EmulatorConfiguration.ValidationPoint.allCases)
    func modelRejection(point: EmulatorConfiguration.ValidationPoint) async throws {
        let scenario = try await runScenario(emulator: { $0.validateInputAt = point }) { folder in
            try SpecWriter.writeJobs(count: 2, in: folder, sharedImages: 1)
            try """
                name: unreachable-style
                prompt: "Animate in the style of @Image1"
                image_urls: ["https://cdn.example.invalid/style.png"]
                """.write(to: folder.appendingPathComponent("bad.yaml"), atomically: true, encoding: .utf8)
        }
        defer { scenario.folder.remove() }
        #expect(!scenario.report.succeeded)
        #expect(scenario.report.completed.count == 2)
        let failed = try #require(scenario.report.failed.first)
        #expect(scenario.report.failed.count == 1)
        #expect(failed.name == "unreachable-style")
        #expect(failed.attempts == 1)
        let attempts = try scenario.store.attempts(of: failed.id)
        #expect(attempts.count == 1)
        let manifest = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: try #require(failed.manifestPath))))
        #expect(manifest["state"] == "failed")
        let error = manifest["error"]?.stringValue ?? ""
        #expect(error.contains("image_urls[0]") && error.contains("Failed to download"), "\(error)")
        #expect(scenario.counters.submissionsPerBody.values.allSatisfy { $0 == 1 })
        #expect(scenario.counters.submitCalls == 3)
    }

    @Test("submits whose answers are lost are found again and adopted: exactly one submission per job")
    func droppedAnswers() async throws {
        let scenario = try await runScenario(emulator: { knobs in
            knobs.seed = 7
            knobs.faults = [FaultRule(kind: .dropSubmitAnswer, probability: 0.1)]
        }) { try SpecWriter.writeJobs(count: 50, in: $0, sharedImages: 2) }
        defer { scenario.folder.remove() }
        #expect(scenario.report.succeeded, "\(scenario.report.summary)")
        let counters = scenario.counters
        #expect(counters.requestsCreated == 50)
        #expect(counters.duplicateSubmissions == 0)
        let dropped = counters.faults(.dropSubmitAnswer)
        #expect(dropped > 0)
        let store = try scenario.store
        let adopted = try scenario.report.jobs.flatMap { try store.attempts(of: $0.id) }.filter { $0.outcome == .succeeded && $0.requestId != nil }
        #expect(adopted.count == 50)
        let events = try scenario.report.jobs.flatMap { try store.events(of: $0.id) }
        #expect(events.filter { $0.message.hasPrefix("found request") }.count == dropped)
        #expect(scenario.report.jobs.allSatisfy { !$0.possibleDuplicate })
    }

    @Test("a submit that never reached fal is resubmitted after the grace period and flagged as a possible duplicate")
    func lostSubmit() async throws {
        let scenario = try await runScenario(emulator: { knobs in
            knobs.faults = [FaultRule(kind: .connectionReset, probability: 1, routes: [.submit], limit: 1)]
        }, runner: { $0.reconcileGrace = .seconds(1) }) { try SpecWriter.writeJobs(count: 1, in: $0, sharedImages: 0) }
        defer { scenario.folder.remove() }
        #expect(scenario.report.succeeded, "\(scenario.report.summary)")
        let job = try #require(scenario.report.jobs.first)
        #expect(job.possibleDuplicate)
        #expect(try scenario.store.attempts(of: job.id).map(\.outcome) == [.lost, .succeeded])
        #expect(try scenario.outputs().first?.manifest["possible_duplicate"] == true)
        #expect(scenario.counters.requestsCreated == 1)
    }

    @Test("a lost submit is never sent again while fal's listing cannot be read, even past the grace period; once it can, the request is found and adopted")
    func unreadableListing() async throws {
        // The answer to the only submit is lost (the request exists at fal), and the listing answers 503 to the
        // first 12 reads: 1.8 s of looks at 150 ms, past the 1 s grace. Not finding it proves nothing then.
        let scenario = try await runScenario(emulator: { knobs in
            knobs.faults = [
                FaultRule(kind: .dropSubmitAnswer, probability: 1, routes: [.submit], limit: 1),
                FaultRule(kind: .serverError503, probability: 1, routes: [.listRequests], limit: 12),
            ]
        }, runner: { $0.reconcileGrace = .seconds(1) }) { try SpecWriter.writeJobs(count: 1, in: $0, sharedImages: 0) }
        defer { scenario.folder.remove() }
        #expect(scenario.report.succeeded, "\(scenario.report.summary)")
        #expect(scenario.counters.faults(.serverError503) == 12)
        #expect(scenario.counters.submitCalls == 1 && scenario.counters.requestsCreated == 1 && scenario.counters.duplicateSubmissions == 0)
        let job = try #require(scenario.report.jobs.first)
        #expect(!job.possibleDuplicate)
        #expect(try scenario.store.attempts(of: job.id).map(\.outcome) == [.succeeded])
    }

    @Test("the key's concurrency limit is respected: the runner backs off instead of hammering, and never exceeds its own limit")
    func perKeyLimit() async throws {
        let scenario = try await runScenario(emulator: { knobs in
            knobs.perKeyConcurrencyLimit = 3
            // Long enough that a fourth submit comes while three run, however slowly this process gets its threads.
            knobs.runSeconds = 1
        }, runner: { $0.concurrency = 6 }) { try SpecWriter.writeJobs(count: 24, in: $0, sharedImages: 2) }
        defer { scenario.folder.remove() }
        #expect(scenario.report.succeeded, "\(scenario.report.summary)")
        let counters = scenario.counters
        #expect(counters.maxActivePerKey <= 3)
        #expect(counters.maxActiveRequests <= 6)
        #expect(counters.concurrencyRejections > 0)
        #expect(counters.concurrencyRejections < 24, "429s should lower the runner's concurrency, not repeat for every job")
        #expect(counters.duplicateSubmissions == 0)
        // Waiting for a rate limit is not a failed attempt.
        #expect(scenario.report.jobs.allSatisfy { $0.attempts == 1 })
    }

    @Test("a request that fails at fal with a retryable error is submitted again as a new attempt")
    func retryableFalFailure() async throws {
        let scenario = try await runScenario(emulator: { $0.faults = [FaultRule(kind: .jobFailure, probability: 1, limit: 1)] }) {
            try SpecWriter.writeJobs(count: 1, in: $0, sharedImages: 0)
        }
        defer { scenario.folder.remove() }
        #expect(scenario.report.succeeded, "\(scenario.report.summary)")
        let job = try #require(scenario.report.jobs.first)
        #expect(job.attempts == 2)
        #expect(try scenario.store.attempts(of: job.id).map(\.outcome) == [.failedAtFal, .succeeded])
        let attempts = try #require(try scenario.outputs().first?.manifest["attempts"]?.arrayValue)
        #expect(attempts.first?["error"]?["reason"] == "runner_server_error")
        // Both attempts name the runner that sent them: this process, host name and suffix.
        #expect(attempts.map { $0["attempted_by"] } == Array(repeating: .string(RunnerIdentity.current.id), count: 2))
        let manifest = try #require(try scenario.outputs().first?.manifest)
        #expect(manifest["finished_by"] == ["runner": .string(RunnerIdentity.current.id), "host": .string(RunnerIdentity.current.host)])
        #expect(RunnerIdentity.current.id.wholeMatch(of: /.+-[0-9a-f]{6}/) != nil && RunnerIdentity.current.id.hasPrefix(RunnerIdentity.current.host + "-"))
        #expect(scenario.counters.requestsCreated == 2)
    }

    @Test("a content-policy rejection fails at once, after one submission")
    func contentPolicy() async throws {
        let scenario = try await runScenario(emulator: { $0.faults = [FaultRule(kind: .jobRejected, probability: 1, limit: 1)] }) {
            try SpecWriter.writeJobs(count: 1, in: $0, sharedImages: 0)
        }
        defer { scenario.folder.remove() }
        let job = try #require(scenario.report.failed.first)
        #expect(job.attempts == 1)
        #expect(job.lastError?.contains("content_policy_violation") == true)
        #expect(scenario.counters.requestsCreated == 1)
    }

    @Test("a refused key stops the run with a loud reason; no job fails or is lost")
    func refusedKey() async throws {
        let scenario = try await runScenario(emulator: { $0.acceptedKeys = ["someone-else"] }) {
            try SpecWriter.writeJobs(count: 5, in: $0, sharedImages: 1)
        }
        defer { scenario.folder.remove() }
        #expect(!scenario.report.succeeded)
        #expect(scenario.report.abortReason?.contains("paused") == true)
        #expect(scenario.report.failed.isEmpty)
        #expect(scenario.report.jobs.allSatisfy { $0.state == .queued })
        #expect(scenario.counters.requestsCreated == 0)
    }

    @Test("the same specs again are not run twice; --rerun runs them again")
    func rerun() async throws {
        let folder = try TemporaryDirectory("rerun")
        defer { folder.remove() }
        let specs = folder.url.appendingPathComponent("jobs")
        try SpecWriter.writeJobs(count: 3, in: specs, sharedImages: 1)
        let configuration = fastConfiguration(in: folder)
        try await EmulatorHarness.run(configure: { $0.runSeconds = 0.05 }) { harness in
            let first = try await RunOnce.run(configuration: configuration, client: harness.client, specPaths: [specs.path], validator: .init(), logger: quietLogger())
            #expect(first.completed.count == 3)
            let second = try await RunOnce.run(configuration: configuration, client: harness.client, specPaths: [specs.path], validator: .init(), logger: quietLogger())
            #expect(second.duplicates.count == 3)
            #expect(second.jobs.isEmpty)
            #expect(second.succeeded)
            let third = try await RunOnce.run(configuration: configuration, client: harness.client, specPaths: [specs.path], validator: .init(), allowDuplicate: true, logger: quietLogger())
            #expect(third.completed.count == 3)
            #expect(Set(third.completed.compactMap(\.videoPath)).isDisjoint(with: Set(first.completed.compactMap(\.videoPath))))
            #expect(await harness.emulator.state.counters().requestsCreated == 6)
        }
    }

    @Test("a second run on the same state folder refuses to start while the first holds it")
    func lock() throws {
        let folder = try TemporaryDirectory("lock")
        defer { folder.remove() }
        let held = try StateLock(stateDirectory: folder.path, purpose: "test")
        #expect(throws: StateLock.Held.self) { try StateLock(stateDirectory: folder.path, purpose: "second") }
        do {
            _ = try StateLock(stateDirectory: folder.path, purpose: "second")
        } catch let error as StateLock.Held {
            #expect(error.description.contains("pid \(getpid())"))
        }
        withExtendedLifetime(held) {}
    }
}
