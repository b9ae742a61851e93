import FalEmulator
import KlingCore
import Foundation
import Testing
import TestSupport

/// The output tree on a disk that fills up or turns read-only: paid videos wait for it, nothing fails, nothing
/// new is submitted meanwhile, and nothing half-written is ever visible.
@Suite("A full or read-only output disk", .serialized, .timeLimit(.minutes(5)), needsRoot)
struct OutputDiskTests {
    @Test("50 jobs of 2 MB videos on a 20 MB output disk: downloads wait, no new submit while they do, then 50 videos and exactly 50 submissions, no job failed, no retry")
    func fillsUp() async throws {
        let folder = try TemporaryDirectory("out-fills")
        defer { folder.remove() }
        let disk = try Tmpfs(at: folder.path + "/out", megabytes: 20)
        defer { disk.unmount() }
        try SpecWriter.writeJobs(count: 50, in: folder.url.appendingPathComponent("jobs"), sharedImages: 5)
        let emulator = try await EmulatorProcess(["--run-seconds", "0.1", "--video-bytes", "2000000"])
        let run = try Processes.runOnce(
            emulator, state: folder.path + "/state", out: disk.path, jobs: folder.path + "/jobs", extra: ["--concurrency", "4", "--log-level", "debug"])
        await run.waitForStderr("videos wait for space; no new job is submitted")
        // While the disk stays full, the runner re-checks it; over those checks no new request may reach fal
        // (jobs already past the gate when the disk filled may still land, so count from the third check on).
        let seen = run.stderrCount("still paused:")
        await run.waitForStderr("still paused:", count: seen + 3)
        let during = try await emulator.counters().requestsCreated
        await run.waitForStderr("still paused:", count: seen + 6)
        #expect(try await emulator.counters().requestsCreated == during, "new jobs were submitted while no video could land")
        #expect(during < 50)
        #expect(Processes.files(in: disk.path, suffix: ".mp4").count <= 10)

        try disk.resize(megabytes: 200)
        let status = await run.waitForExit()
        #expect(status == 0, "\(run.stdout)\n\(run.stderr.suffix(3000))")
        #expect(run.stdout.contains("50 of 50 jobs completed, 0 failed"), "\(run.stdout)")
        #expect(run.stderr.contains("the output folder can be written again; submission resumes"))
        let counters = try await emulator.counters()
        #expect(counters.requestsCreated == 50 && counters.submitCalls == 50, "\(counters.requestsCreated) requests for 50 jobs")
        #expect(counters.duplicateSubmissions == 0)
        try Processes.expectOutputs(disk.path, count: 50)
        await emulator.stop()
    }

    @Test("an output disk remounted read-only: the finished jobs wait in downloading, then complete once it is writable, with no failure and no second submission")
    func readOnly() async throws {
        let folder = try TemporaryDirectory("out-readonly")
        defer { folder.remove() }
        let disk = try Tmpfs(at: folder.path + "/out", megabytes: 20)
        defer { disk.unmount() }
        try SpecWriter.writeJobs(count: 5, in: folder.url.appendingPathComponent("jobs"), sharedImages: 1)
        let emulator = try await EmulatorProcess(["--hold", "--run-seconds", "0.1"])
        let run = try Processes.runOnce(
            emulator, state: folder.path + "/state", out: disk.path, jobs: folder.path + "/jobs", extra: ["--concurrency", "8", "--log-level", "debug"])
        try await emulator.waitForCounters { $0.requestsCreated == 5 }
        try disk.remountReadOnly()
        try await emulator.releaseRequests()
        await run.waitForStderr("Read-only file system")
        await run.waitForStderr("still paused:", count: run.stderrCount("still paused:") + 2)
        let list = try await Processes.command(["list", "--state-dir", folder.path + "/state", "--json"])
        let states = try JSONValue.parse(Data(list.out.utf8)).arrayValue?.compactMap { $0["state"]?.stringValue } ?? []
        // Waiting, not failed: every job is still at fal or waiting in downloading (none can have completed).
        #expect(states.contains("downloading") && states.allSatisfy { ["in_queue", "in_progress", "downloading"].contains($0) }, "\(states)")

        try disk.remountWritable()
        let status = await run.waitForExit()
        #expect(status == 0, "\(run.stdout)\n\(run.stderr.suffix(3000))")
        let counters = try await emulator.counters()
        #expect(counters.requestsCreated == 5 && counters.duplicateSubmissions == 0)
        try Processes.expectOutputs(disk.path, count: 5)
        await emulator.stop()
    }

    @Test("downloads start only while they fit: 8 × 2 MB on a 10 MB disk finish 4 and hold no partial files; the rest follow once there is room")
    func admission() async throws {
        let folder = try TemporaryDirectory("out-admission")
        defer { folder.remove() }
        let disk = try Tmpfs(at: folder.path + "/out", megabytes: 10)
        defer { disk.unmount() }
        try SpecWriter.writeJobs(count: 8, in: folder.url.appendingPathComponent("jobs"), sharedImages: 1)
        let emulator = try await EmulatorProcess(["--run-seconds", "0.05", "--video-bytes", "2000000"])
        let run = try Processes.runOnce(
            emulator, state: folder.path + "/state", out: disk.path, jobs: folder.path + "/jobs",
            extra: ["--concurrency", "8", "--downloads", "8", "--log-level", "debug"])
        await run.waitForStderr("videos wait for space")
        await run.waitForStderr("completed:", count: 4)
        await run.waitForStderr("still paused:", count: run.stderrCount("still paused:") + 3)
        #expect(Processes.files(in: disk.path, suffix: ".mp4").count == 4)
        let partials = ((try? FileManager.default.subpathsOfDirectory(atPath: disk.path)) ?? []).filter { $0.hasSuffix(".part") }
        #expect(partials.isEmpty, "space held by partial downloads: \(partials)")
        try disk.resize(megabytes: 40)
        #expect(await run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        let counters = try await emulator.counters()
        #expect(counters.requestsCreated == 8 && counters.duplicateSubmissions == 0)
        try Processes.expectOutputs(disk.path, count: 8)
        await emulator.stop()
    }

    @Test("a day folder that refuses writes while the output root takes them: the pause neither flaps nor spins, and lifts once the folder works")
    func noFlapping() async throws {
        let folder = try TemporaryDirectory("out-flap")
        defer { folder.remove() }
        let day = OutputDay.today()
        let dayFolder = folder.path + "/out/" + day
        let disk = try Tmpfs(at: dayFolder, megabytes: 8)
        defer { disk.unmount() }
        try disk.remountReadOnly()
        try SpecWriter.writeJobs(count: 2, in: folder.url.appendingPathComponent("jobs"), sharedImages: 1)
        let emulator = try await EmulatorProcess(["--run-seconds", "0.05"])
        let run = try Processes.runOnce(
            emulator, state: folder.path + "/state", out: folder.path + "/out", jobs: folder.path + "/jobs", extra: ["--log-level", "debug"])
        await run.waitForStderr("Read-only file system")
        await run.waitForStderr("still paused:", count: run.stderrCount("still paused:") + 5)
        #expect(run.stderrCount("submission paused:") <= 2, "the pause flapped: \(run.stderrCount("submission paused:")) times")
        #expect(run.stderrCount("submission resumes") == 0)
        try disk.remountWritable()
        #expect(await run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        try Processes.expectOutputs(folder.path + "/out", count: 2)
        await emulator.stop()
    }
}

/// The local day folder a batch accepted now goes in, as the runner names it.
enum OutputDay {
    static func today() -> String {
        let parts = Calendar.current.dateComponents([.year, .month, .day], from: Date())
        return String(format: "%04d-%02d-%02d", parts.year!, parts.month!, parts.day!)
    }
}
