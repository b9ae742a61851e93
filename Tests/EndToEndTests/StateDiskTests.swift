import AsyncHTTPClient
import FalEmulator
import GRDB
import Foundation
import Testing
import TestSupport

/// The state folder (the job store) on a disk that fills up: nothing is ever paid twice, nothing is lost.
@Suite("A full state disk", .serialized, .timeLimit(.minutes(5)), needsRoot)
struct StateDiskTests {
    @Test("50 jobs at concurrency 50 with the state folder on a 4 MB disk that fills up: it waits, and once space is freed, 50 videos and exactly 50 submissions")
    func fillsUp() async throws {
        let folder = try TemporaryDirectory("state-fills")
        defer { folder.remove() }
        let disk = try Tmpfs(at: folder.path + "/state", megabytes: 4)
        defer { disk.unmount() }
        try SpecWriter.writeJobs(count: 50, in: folder.url.appendingPathComponent("jobs"), sharedImages: 5)
        let emulator = try await EmulatorProcess(["--run-seconds", "0.2"])
        let run = try Processes.runOnce(
            emulator, state: disk.path, out: folder.path + "/out", jobs: folder.path + "/jobs", extra: ["--concurrency", "50", "--min-free-space", "0"])
        await run.waitForStderr("submission paused: the job store")
        let atPause = try await emulator.counters()
        try disk.resize(megabytes: 64)
        let status = await run.waitForExit()
        #expect(status == 0, "\(run.stdout)\n\(run.stderr.suffix(3000))")
        let counters = try await emulator.counters()
        #expect(counters.requestsCreated == 50, "fal saw \(counters.requestsCreated) submissions for 50 jobs (\(atPause.requestsCreated) when the disk was full)")
        #expect(counters.submitCalls == 50)
        #expect(counters.duplicateSubmissions == 0)
        // 55 distinct images (50 own, 5 shared): an upload the full disk could not record is kept and recorded
        // later, never uploaded again on each retry (a run left on a full disk once uploaded 960,000 times).
        #expect(counters.uploadInitiations <= 55, "uploads: \(counters.uploadInitiations) for 55 distinct images")
        try Processes.expectOutputs(folder.path + "/out", count: 50)
        await emulator.stop()
    }

    @Test("the state disk full at the moment fal's answers arrive: all 50 are held in memory, none sent again; then 50 videos and exactly 50 submissions")
    func fullWhileAnswering() async throws {
        let folder = try TemporaryDirectory("state-full")
        defer { folder.remove() }
        let disk = try Tmpfs(at: folder.path + "/state", megabytes: 16)
        defer { disk.unmount() }
        try SpecWriter.writeJobs(count: 50, in: folder.url.appendingPathComponent("jobs"), sharedImages: 5)
        // Every request is created at once, and its answer held, so the disk can be filled at exactly that moment.
        let emulator = try await EmulatorProcess(["--hold-answers", "--run-seconds", "0.2"])
        let run = try Processes.runOnce(
            emulator, state: disk.path, out: folder.path + "/out", jobs: folder.path + "/jobs",
            extra: ["--concurrency", "50", "--min-free-space", "0"])
        try await emulator.waitForCounters { $0.submitAnswersHeld == 50 }
        try disk.fill()
        // SQLite reuses a WAL file it already grew; take that room too, so that no commit of the runner's can land.
        try SQLiteFiller.exhaust(disk.path + "/kling-batch.sqlite")
        try await emulator.releaseAnswers()

        // Every answer is held in memory, never resent.
        await run.waitForStderr("holding fal's request", count: 50)
        #expect(run.stderrCount("holding fal's request") == 50, "\(run.stderr.suffix(2000))")
        #expect(run.stderr.contains("submission paused: the job store"), "\(run.stderr.suffix(2000))")
        #expect(try await emulator.counters().submitCalls == 50)

        try disk.resize(megabytes: 64)
        let status = await run.waitForExit()
        #expect(status == 0, "\(run.stdout)\n\(run.stderr.suffix(3000))")
        #expect(run.stderr.contains("the job store can be written again; submission resumes"))
        let counters = try await emulator.counters()
        #expect(counters.submitCalls == 50, "submit calls: \(counters.submitCalls)")
        #expect(counters.requestsCreated == 50)
        #expect(counters.duplicateSubmissions == 0)
        #expect(counters.submissionsPerBody.values.allSatisfy { $0 == 1 })
        try Processes.expectOutputs(folder.path + "/out", count: 50)
        await emulator.stop()
    }

    @Test("below the free-space floor nothing is claimed; status, STATUS=, /healthz and the log say why; freeing space resumes by itself")
    func belowTheFloor() async throws {
        let folder = try TemporaryDirectory("state-floor")
        defer { folder.remove() }
        let disk = try Tmpfs(at: folder.path + "/state", megabytes: 24)
        defer { disk.unmount() }
        try FileManager.default.createDirectory(atPath: folder.path + "/jobs", withIntermediateDirectories: true)
        let stage = folder.url.appendingPathComponent("stage")
        let specs = try SpecWriter.writeJobs(count: 6, in: stage, sharedImages: 2)
        try FileManager.default.copyItem(atPath: stage.path + "/refs", toPath: folder.path + "/jobs/refs")
        let socket = try NotifySocket(path: folder.path + "/notify.sock")
        defer { socket.close() }
        let emulator = try await EmulatorProcess(["--run-seconds", "0.2"])
        let common = ["--state-dir", disk.path]
        let environment = Processes.environment(["KLING_BATCH_MIN_FREE_SPACE": "12MB"])
        let daemon = try ChildProcess("kling-batch", [
            "daemon", "--fal-url", emulator.url.absoluteString, "--jobs", folder.path + "/jobs", "--out", folder.path + "/out",
            "--settle", "100ms", "--local-recheck", "200ms", "--http", "127.0.0.1:0",
        ] + common, environment: environment.merging(["NOTIFY_SOCKET": socket.path]) { _, new in new })
        await daemon.waitForStderr("metrics listening on ")
        await daemon.waitForStderr("watching ")
        try disk.fill(leaving: 6_000_000)
        for spec in specs { try FileManager.default.moveItem(atPath: spec, toPath: folder.path + "/jobs/" + (spec as NSString).lastPathComponent) }
        await daemon.waitForStderr("below the floor of 12 MB")
        await daemon.waitForStderr("accepted job-5.yaml")

        let status = await socket.first { $0.hasPrefix("STATUS=") && $0.contains("paused") }
        #expect(status.contains("below the floor"), "\(status)")
        let base = Self.metricsBase(daemon.stderr)
        let health = try await Self.get(base + "/healthz")
        #expect(health.status == 503 && health.body.contains("below the floor"), "\(health)")
        let cli = try await Processes.command(["status"] + common, environment: environment)
        #expect(cli.out.contains("submission paused:") && cli.out.contains("below the floor"), "\(cli.out)\n\(cli.err)")
        #expect(try await emulator.counters().submitCalls == 0, "nothing may be submitted below the floor")

        try FileManager.default.removeItem(atPath: disk.path + "/.filler")
        await daemon.waitForStderr("the state folder has room again; submission resumes")
        await daemon.waitForStderr("completed:", count: 6)
        #expect(try await Self.get(base + "/healthz").status == 200)
        daemon.signal(SIGTERM)
        #expect(await daemon.waitForExit() == 0)
        let counters = try await emulator.counters()
        #expect(counters.requestsCreated == 6 && counters.duplicateSubmissions == 0)
        try Processes.expectOutputs(folder.path + "/out", count: 6)
        await emulator.stop()
    }

    /// `http://127.0.0.1:PORT` from the daemon's "metrics listening on" line.
    static func metricsBase(_ log: String) -> String {
        let line = log.split(separator: "\n").first { $0.contains("metrics listening on ") }.map(String.init) ?? ""
        return line.components(separatedBy: "metrics listening on ").last?.components(separatedBy: "/metrics").first ?? ""
    }

    static func get(_ url: String) async throws -> (status: Int, body: String) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), String(buffer: body))
    }
}

/// Writes into a store from outside (as a second process would) until SQLite says the disk is full.
enum SQLiteFiller {
    static func exhaust(_ path: String) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.write { try $0.execute(sql: "CREATE TABLE IF NOT EXISTS test_filler (blob BLOB)") }
        let blob = Data(repeating: 0x5A, count: 16 * 1024)
        while true {
            do {
                try queue.write { try $0.execute(sql: "INSERT INTO test_filler VALUES (?)", arguments: [blob]) }
            } catch let error as DatabaseError where error.resultCode == .SQLITE_FULL {
                return
            }
        }
    }
}
