import FalEmulator
import Foundation
import KlingCore
import Testing
import TestSupport

/// The runner as a separate process, killed with SIGKILL at chosen places and restarted, must still end with
/// every job done once.
@Suite("Killed and restarted", .serialized, .timeLimit(.minutes(10)))
struct CrashRecoveryTests {
    /// `kling-batch run --once` against `emulator`, with settings that keep a 50-job run to seconds.
    func runner(_ emulator: EmulatorProcess, folder: TemporaryDirectory, crash: String? = nil) throws -> ChildProcess {
        var environment = ProcessInfo.processInfo.environment
        environment["FAL_KEY"] = "crash-test-key"
        environment.removeValue(forKey: "KLING_BATCH_TEST_CRASH")
        if let crash { environment["KLING_BATCH_TEST_CRASH"] = crash }
        return try ChildProcess("kling-batch", [
            "run", "--once", "--fal-url", emulator.url.absoluteString, "--state-dir", folder.path + "/state", "--out", folder.path + "/out",
            "--concurrency", "6", "--reconcile-interval", "200ms", "--reconcile-grace", "20s", "--log-level", "info", folder.path + "/jobs",
        ], environment: environment)
    }

    @Test("SIGKILL at several points of a 50-job run, restarted each time: 50 videos and exactly 50 submissions")
    func killedAndRestarted() async throws {
        let folder = try TemporaryDirectory("crash")
        defer { folder.remove() }
        try SpecWriter.writeJobs(count: 50, in: folder.url.appendingPathComponent("jobs"), sharedImages: 5)
        let emulator = try await EmulatorProcess(["--run-seconds", "0.4", "--queue-seconds", "0.1", "--capacity", "4"])

        // Each crash point is passed by every job; killing at its N-th passage stops the run in the middle.
        let crashes = ["submit-answered:4", "submit-committed:6", "polled:25", "before-manifest:5", "submit-answered:2"]
        for crash in crashes {
            let run = try runner(emulator, folder: folder, crash: crash)
            let status = await run.waitForExit()
            #expect(run.process.terminationReason == .uncaughtSignal && status == SIGKILL, "\(crash): expected SIGKILL, got \(status): \(run.stderr.suffix(2000))")
        }
        // And one kill from outside, at a moment chosen by watching the log rather than the clock.
        let watched = try runner(emulator, folder: folder)
        await watched.waitForStderr("completed:", count: 3)
        watched.signal(SIGKILL)
        await watched.waitForExit()

        let final = try runner(emulator, folder: folder)
        let status = await final.waitForExit()
        #expect(status == 0, "final run: \(final.stdout)\n\(final.stderr.suffix(3000))")
        #expect(final.stdout.contains("completed, 0 failed"), "\(final.stdout)")

        let counters = try await emulator.counters()
        #expect(counters.requestsCreated == 50, "fal saw \(counters.requestsCreated) submissions for 50 jobs")
        #expect(counters.duplicateSubmissions == 0)
        let videos = try FileManager.default.subpathsOfDirectory(atPath: folder.path + "/out").filter { $0.hasSuffix(".mp4") }
        let manifests = try FileManager.default.subpathsOfDirectory(atPath: folder.path + "/out").filter { $0.hasSuffix(".json") }
        #expect(videos.count == 50)
        #expect(manifests.count == 50)
        for video in videos { #expect(try MP4Inspector(file: URL(fileURLWithPath: folder.path + "/out/" + video)).isPlayable) }
        let partials = try FileManager.default.subpathsOfDirectory(atPath: folder.path + "/out").filter { $0.hasSuffix(".part") || $0.contains(".tmp-") }
        #expect(partials.isEmpty, "left behind: \(partials)")
        await emulator.stop()
    }

    @Test("SIGTERM while submits are on their way: their answers are still heard and recorded, never taken for 'not sent'; the next run pays for nothing again",
          arguments: ["answered within the grace", "no answer within the grace"])
    func stoppedMidSubmit(answer: String) async throws {
        let folder = try TemporaryDirectory("stop-mid-submit")
        defer { folder.remove() }
        try SpecWriter.writeJobs(count: 3, in: folder.url.appendingPathComponent("jobs"), sharedImages: 1)
        let emulator = try await EmulatorProcess(["--hold-answers", "--run-seconds", "0.05"])
        let first = try runner(emulator, folder: folder)
        try await emulator.waitForCounters { $0.submitAnswersHeld == 3 }
        if answer == "answered within the grace" {
            // Within the runner's 5 s grace, whenever this test next gets a thread: from the reader's own thread.
            first.onStderr("stopping: nothing new is claimed") { emulator.releaseAnswersBlocking() }
        }
        first.signal(SIGTERM)
        let status = await first.waitForExit()
        #expect(status != 0, "a stopped run with unfinished jobs does not report success")
        if answer == "answered within the grace" {
            #expect(first.stderr.components(separatedBy: "] submitted (attempt").count - 1 == 3, "\(first.stderr.suffix(2000))")
        } else {
            try await emulator.releaseAnswers()
        }
        // Nothing was taken for "not sent": the next run resumes or reconciles, and pays for nothing again.
        try await emulator.configure { $0.holdSubmitAnswers = false }
        let second = try runner(emulator, folder: folder)
        #expect(await second.waitForExit() == 0, "\(second.stderr.suffix(2000))")
        let counters = try await emulator.counters()
        #expect(counters.requestsCreated == 3 && counters.duplicateSubmissions == 0, "\(counters.requestsCreated) requests for 3 jobs")
        await emulator.stop()
    }

    @Test("a second runner on the same state folder refuses to start and names the first one's pid")
    func secondRunnerRefused() async throws {
        let folder = try TemporaryDirectory("second")
        defer { folder.remove() }
        try SpecWriter.writeJobs(count: 4, in: folder.url.appendingPathComponent("jobs"), sharedImages: 1)
        let emulator = try await EmulatorProcess(["--hold"])
        let first = try runner(emulator, folder: folder)
        await first.waitForStderr("submitted", count: 1)
        let second = try runner(emulator, folder: folder)
        let status = await second.waitForExit()
        #expect(status != 0)
        #expect(second.stderr.contains("pid \(first.pid)"), "\(second.stderr)")
        first.signal(SIGTERM)
        #expect(await first.waitForExit() != 0, "a stopped run with unfinished jobs does not report success")
        await emulator.stop()
    }
}
