import FalEmulator
import Foundation
import KlingCore
import Testing
import TestSupport

/// `--simulate` works from a binary installed alone, and its store never mixes with a real one.
@Suite("Simulated runs", .serialized, .timeLimit(.minutes(5)))
struct SimulateTests {
    /// The repository's own example jobs.
    static let exampleJobs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("jobs")

    @Test("the binary copied alone into an empty folder runs the example jobs with run --once --simulate, in a store of its own under $HOME")
    func binaryAlone() async throws {
        let folder = try TemporaryDirectory("simulate-alone")
        defer { folder.remove() }
        let bin = folder.url.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: try ChildProcess.product("kling-batch"), to: bin.appendingPathComponent("kling-batch"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: bin.path) == ["kling-batch"])
        try FileManager.default.copyItem(at: Self.exampleJobs, to: folder.url.appendingPathComponent("jobs"))
        let home = folder.path + "/home"
        var environment = Processes.environment()
        environment.removeValue(forKey: "FAL_KEY")
        environment.removeValue(forKey: "XDG_STATE_HOME")
        environment["HOME"] = home
        let run = try ChildProcess(at: bin.appendingPathComponent("kling-batch"), ["run", "--once", "--simulate", "jobs"], environment: environment, currentDirectory: folder.url)
        let status = await run.waitForExit()
        #expect(status == 0, "\(run.stdout)\n\(run.stderr.suffix(2000))")
        #expect(run.stdout.contains("5 of 5 jobs completed"), "\(run.stdout)")
        try Processes.expectOutputs(folder.path + "/out", count: 5)
        // The demo's videos last as long as their specs say, and have their shape (read with our own box reader).
        var durations: [Int] = []
        for name in Processes.files(in: folder.path + "/out", suffix: ".json") {
            let manifest = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: folder.path + "/out/" + name)))
            let asked = try #require(manifest["duration_seconds"]?.intValue)
            let video = try MP4Summary.read(fileAt: try #require(manifest["video"]?["path"]?.stringValue))
            #expect(abs(video.durationSeconds - Double(asked)) < 0.05, "\(name): \(video) for \(asked) s")
            let shapes: [String: Double] = ["16:9": 16.0 / 9, "9:16": 9.0 / 16, "1:1": 1.0]
            let shape: Double = shapes[manifest["aspect_ratio"]?.stringValue ?? ""] ?? 0
            let actual: Double = Double(video.width) / Double(video.height)
            #expect(abs(actual - shape) < 0.02, "\(name): \(video)")
            #expect(manifest["needs_review"] == .null)
            #expect(manifest["video"]?["duration_seconds"]?.doubleValue == video.durationSeconds)
            durations.append(Int(asked))
        }
        #expect(Set(durations).count > 1, "the examples ask for several durations: \(durations)")
        #expect(FileManager.default.fileExists(atPath: home + "/.local/state/kling-batch/simulate/kling-batch.sqlite"))
        #expect(!FileManager.default.fileExists(atPath: home + "/.local/state/kling-batch/kling-batch.sqlite"), "a simulated run made the real store")
    }

    @Test("a real run on a simulated store, or --simulate on a real one, is refused with exit 4; $XDG_STATE_HOME is honoured; status --simulate reads the simulated store")
    func storesNeverMix() async throws {
        let folder = try TemporaryDirectory("simulate-mix")
        defer { folder.remove() }
        try SpecWriter.writeJobs(count: 1, in: folder.url.appendingPathComponent("jobs"), sharedImages: 0)
        var environment = Processes.environment()
        environment["XDG_STATE_HOME"] = folder.path + "/xdg"
        let simulated = folder.path + "/xdg/kling-batch/simulate"
        let sim = try ChildProcess("kling-batch", ["run", "--once", "--simulate", "--out", folder.path + "/out", folder.path + "/jobs"], environment: environment)
        #expect(await sim.waitForExit() == 0, "\(sim.stderr.suffix(2000))")
        #expect(FileManager.default.fileExists(atPath: simulated + "/kling-batch.sqlite"))
        let status = try await Processes.command(["status", "--simulate"], environment: environment)
        #expect(status.status == 0 && status.out.contains("completed 1"), "\(status)")

        let emulator = try await EmulatorProcess(["--run-seconds", "0.05"])
        let real = try Processes.runOnce(emulator, state: simulated, out: folder.path + "/out", jobs: folder.path + "/jobs", environment: environment)
        #expect(await real.waitForExit() == 4)
        #expect(real.stderr.contains("was made by --simulate runs"), "\(real.stderr)")
        #expect(try await emulator.counters().submitCalls == 0)

        let realRun = try Processes.runOnce(emulator, state: folder.path + "/real", out: folder.path + "/out", jobs: folder.path + "/jobs", environment: environment)
        #expect(await realRun.waitForExit() == 0)
        let simOnReal = try ChildProcess(
            "kling-batch", ["run", "--once", "--simulate", "--state-dir", folder.path + "/real", folder.path + "/jobs"], environment: environment)
        #expect(await simOnReal.waitForExit() == 4)
        #expect(simOnReal.stderr.contains("holds real jobs"), "\(simOnReal.stderr)")
        await emulator.stop()
    }

    @Test("daemon --simulate runs dropped specs against its own emulator with no key; cancel --simulate reaches that emulator through the store, no flag repeated")
    func daemonSimulate() async throws {
        let folder = try TemporaryDirectory("simulate-daemon")
        defer { folder.remove() }
        var environment = Processes.environment()
        environment.removeValue(forKey: "FAL_KEY")
        let common = ["--state-dir", folder.path + "/state"]
        let daemon = try ChildProcess("kling-batch", [
            "daemon", "--simulate", "--jobs", folder.path + "/jobs", "--out", folder.path + "/out", "--settle", "100ms",
        ] + common, environment: environment)
        await daemon.waitForStderr("watching ")
        try Processes.drop(2, into: folder, prefix: "sim")
        await daemon.waitForStderr("completed:", count: 2)
        try Processes.expectOutputs(folder.path + "/out", count: 2)
        let status = try await Processes.command(["status", "--simulate"] + common, environment: environment)
        #expect(status.status == 0 && status.out.contains("completed 2"), "\(status)")
        // The daemon's emulator lives in its process, on a port chosen at start: only the store knows it.
        let cancel = try await Processes.command(["cancel", "--simulate", "sim-0/sim-0"] + common, environment: environment)
        #expect(cancel.err.contains("already completed"), "cancel reached no fal: \(cancel)")
        #expect(!cancel.err.contains("no fal key"), "\(cancel)")
        daemon.signal(SIGTERM)
        #expect(await daemon.waitForExit() == 0)
    }
}
