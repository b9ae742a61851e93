import FalEmulator
import Foundation
import KlingCore
import Testing
import TestSupport

/// Every final state has one commit protocol (video → manifest → store). Killed between the manifest and the
/// store, the next start must finish the job once: its manifest on disk saying the state the store says, and
/// no second request at fal.
@Suite("Killed between a job's manifest and its store commit", .serialized)
struct ManifestCrashTests {
    /// The folder, the emulator, and how to run kling-batch commands on them.
    struct Setup {
        let folder: TemporaryDirectory
        let emulator: EmulatorProcess
        var state: String { folder.path + "/state" }
        var out: String { folder.path + "/out" }

        func runOnce(crash: String? = nil) throws -> ChildProcess {
            let extra = crash.map { ["KLING_BATCH_TEST_CRASH": $0] } ?? [:]
            return try Processes.runOnce(emulator, state: state, out: out, jobs: folder.path + "/jobs", environment: Processes.environment(extra))
        }

        func command(_ arguments: [String], crash: String? = nil) async throws -> (status: Int32, out: String, err: String) {
            let extra = crash.map { ["KLING_BATCH_TEST_CRASH": $0] } ?? [:]
            return try await Processes.command(
                arguments + ["--state-dir", state, "--fal-url", emulator.url.absoluteString], environment: Processes.environment(extra))
        }

        /// `show --json` of the one job, and the manifest its store row names.
        func shown() async throws -> (job: JSONValue, manifest: JSONValue?) {
            let (status, text, err) = try await Processes.command(["show", "job-0/job-0", "--json", "--state-dir", state])
            #expect(status == 0, "show: \(err)")
            let job = try JSONValue.parse(Data(text.utf8))
            let manifest = try job["manifest"]?.stringValue.map { try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: $0))) }
            return (job, manifest)
        }
    }

    func withSetup(_ emulator: [String], _ body: (Setup) async throws -> Void) async throws {
        let folder = try TemporaryDirectory("manifest-crash")
        defer { folder.remove() }
        try SpecWriter.writeJobs(count: 1, in: folder.url.appendingPathComponent("jobs"), sharedImages: 1)
        let emulator = try await EmulatorProcess(emulator)
        try await body(Setup(folder: folder, emulator: emulator))
        await emulator.stop()
    }

    /// Runs once, killed as the manifest of `state` is written; checks the manifest is there and the store not yet final.
    func killedAfterManifest(_ setup: Setup, state: String) async throws {
        let killed = try setup.runOnce(crash: "manifest-written:1")
        let status = await killed.waitForExit()
        #expect(killed.process.terminationReason == .uncaughtSignal && status == SIGKILL, "\(killed.stderr.suffix(2000))")
        let manifests = Processes.files(in: setup.out, suffix: ".json")
        #expect(manifests.count == 1, "the manifest is written before the store is told: \(manifests)")
        let (job, _) = try await setup.shown()
        #expect(job["state"] != .string(state), "the store had not recorded the ending when the process died")
    }

    /// After the restart: the store and the manifest agree on `state`, and fal saw one request.
    func expectConsistent(_ setup: Setup, state: String) async throws {
        let (job, manifest) = try await setup.shown()
        #expect(job["state"] == .string(state))
        #expect(manifest?["state"] == .string(state), "the manifest says \(manifest?["state"] ?? .null)")
        #expect(Processes.files(in: setup.out, suffix: ".json").count == 1)
        #expect(Processes.files(in: setup.out, suffix: ".part").isEmpty)
        let counters = try await setup.emulator.counters()
        #expect(counters.requestsCreated == 1, "fal saw \(counters.requestsCreated) requests for one job")
        #expect(counters.duplicateSubmissions == 0)
    }

    @Test("completed: the restart finds the video, writes the manifest again and records the ending; one request")
    func completed() async throws {
        try await withSetup(["--run-seconds", "0.05"]) { setup in
            try await killedAfterManifest(setup, state: "completed")
            #expect(Processes.files(in: setup.out, suffix: ".mp4").count == 1)
            let again = try setup.runOnce()
            #expect(await again.waitForExit() == 0, "\(again.stderr.suffix(2000))")
            try await expectConsistent(setup, state: "completed")
            let videos = Processes.files(in: setup.out, suffix: ".mp4")
            #expect(videos.count == 1)
            for video in videos { #expect(try MP4Inspector(file: URL(fileURLWithPath: setup.out + "/" + video)).isPlayable) }
        }
    }

    @Test("failed: the restart asks fal about the same request and fails the job once; nothing is submitted again")
    func failed() async throws {
        try await withSetup(["--run-seconds", "0.05", "--fault", "job-rejected=1"]) { setup in
            try await killedAfterManifest(setup, state: "failed")
            let again = try setup.runOnce()
            #expect(await again.waitForExit() != 0, "a run with a failed job does not report success")
            try await expectConsistent(setup, state: "failed")
            #expect(Processes.files(in: setup.out, suffix: ".mp4").isEmpty)
        }
    }

    @Test("cancelled: a cancel killed after its manifest is finished by the next run; fal saw one cancel and one request")
    func cancelled() async throws {
        try await withSetup(["--hold", "--run-seconds", "0.05"]) { setup in
            let first = try setup.runOnce()
            await first.waitForStderr("submitted (attempt")
            first.signal(SIGTERM)
            _ = await first.waitForExit()

            let killed = try await setup.command(["cancel", "job-0/job-0"], crash: "manifest-written:1")
            #expect(killed.status == SIGKILL, "the cancel was killed: \(killed.err)")
            #expect(Processes.files(in: setup.out, suffix: ".json").count == 1, "the manifest is written before the store is told")
            #expect(try await setup.shown().job["state"] != .string("cancelled"))

            let again = try setup.runOnce()
            _ = await again.waitForExit()
            try await expectConsistent(setup, state: "cancelled")
            #expect(try await setup.emulator.counters().cancelsApplied == 1)
            #expect(Processes.files(in: setup.out, suffix: ".mp4").isEmpty)
        }
    }
}
