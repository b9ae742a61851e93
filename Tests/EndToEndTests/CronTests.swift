import FalEmulator
import Foundation
import Testing
import TestSupport

/// `run --once` as cron runs it: the jobs folder is a drop folder, exit codes say what happened, a bad file is
/// reported once, paths survive the move, and an outage of fal ends the run instead of piling runs up.
@Suite("cron and the drop folder", .serialized, .timeLimit(.minutes(5)))
struct CronTests {
    struct Setup {
        let folder: TemporaryDirectory
        let emulator: EmulatorProcess
        var jobs: String { folder.path + "/jobs" }
        var common: [String] { ["--state-dir", folder.path + "/state", "--out", folder.path + "/out"] }
    }

    func withSetup(_ label: String, emulator arguments: [String] = ["--run-seconds", "0.05"], _ body: (Setup) async throws -> Void) async throws {
        let folder = try TemporaryDirectory(label)
        defer { folder.remove() }
        let emulator = try await EmulatorProcess(arguments)
        try await body(Setup(folder: folder, emulator: emulator))
        await emulator.stop()
    }

    /// `run --once` with no path: the configured jobs folder is taken as a drop folder.
    func cronRun(_ setup: Setup, _ extra: [String] = []) async throws -> (status: Int32, out: String, err: String) {
        try await Processes.command(
            ["run", "--once", "--quiet", "--fal-url", setup.emulator.url.absoluteString, "--jobs", setup.jobs, "--settle", "0s",
             "--reconcile-interval", "200ms"] + setup.common + extra)
    }

    /// A valid one-job spec using `refs/<image>` relative to the jobs folder, with `duration` as given.
    func spec(_ name: String, image: String, duration: Int = 5) -> String {
        "name: \(name)\nprompt: \"@Image1 turns slowly toward the light, shot \(name)\"\nimage_urls: [refs/\(image)]\nduration: \(duration)\n"
    }

    func writeImage(_ name: String, in folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder + "/refs", withIntermediateDirectories: true)
        try SpecWriter.png(640, 360, salt: name).write(to: URL(fileURLWithPath: folder + "/refs/" + name))
    }

    @Test("two good specs and a bad one: the first run makes 2 videos, moves the bad spec to rejected/ and exits 2; the second exits 0, silent, submitting nothing")
    func badSpecReportedOnce() async throws {
        try await withSetup("cron-once") { setup in
            try writeImage("a.png", in: setup.jobs)
            for name in ["good-1", "good-2"] { try spec(name, image: "a.png").write(toFile: setup.jobs + "/\(name).yaml", atomically: true, encoding: .utf8) }
            try spec("bad", image: "a.png", duration: 99).write(toFile: setup.jobs + "/bad.yaml", atomically: true, encoding: .utf8)

            let first = try await cronRun(setup)
            #expect(first.status == 2, "\(first.out)\n\(first.err.suffix(2000))")
            #expect(first.out.contains("2 of 2 jobs completed"), "\(first.out)")
            #expect(first.out.contains("rejected \(setup.jobs)/bad.yaml: 1 problem; moved to \(setup.jobs)/rejected/bad.yaml"), "\(first.out)")
            try Processes.expectOutputs(setup.folder.path + "/out", count: 2)
            let errors = try String(contentsOfFile: setup.jobs + "/rejected/bad.yaml.errors.txt", encoding: .utf8)
            #expect(errors.contains("duration"), "\(errors)")
            let day = try FileManager.default.contentsOfDirectory(atPath: setup.jobs + "/accepted")
            #expect(day.count == 1)
            #expect(try FileManager.default.contentsOfDirectory(atPath: setup.jobs + "/accepted/" + day[0]).sorted() == ["good-1.yaml", "good-2.yaml"])
            #expect(Processes.files(in: setup.jobs, suffix: ".yaml").allSatisfy { $0.hasPrefix("accepted/") || $0.hasPrefix("rejected/") })
            #expect(try await setup.emulator.counters().submitCalls == 2)

            let second = try await cronRun(setup)
            #expect(second.status == 0, "\(second.out)\n\(second.err)")
            #expect(second.out.isEmpty, "a quiet run with nothing to say printed: \(second.out)")
            #expect(second.err.isEmpty, "a quiet run with nothing to say logged: \(second.err)")
            let counters = try await setup.emulator.counters()
            #expect(counters.submitCalls == 2 && counters.duplicateSubmissions == 0)
        }
    }

    @Test("a rejected spec's relative images still resolve in rejected/: validate names only the real mistake, and once fixed, rerun queues it")
    func rerunRejected() async throws {
        try await withSetup("cron-rerun") { setup in
            try writeImage("hero.png", in: setup.jobs)
            try spec("fixme", image: "hero.png", duration: 99).write(toFile: setup.jobs + "/fixme.yaml", atomically: true, encoding: .utf8)
            #expect(try await cronRun(setup).status == 2)
            let rejected = setup.jobs + "/rejected/fixme.yaml"
            #expect(FileManager.default.fileExists(atPath: rejected))

            let check = try await Processes.command(["validate", rejected])
            #expect(check.status == 1)
            #expect(check.out.contains("duration") && !check.out.contains("no such file"), "\(check.out)")
            try spec("fixme", image: "hero.png").write(toFile: rejected, atomically: true, encoding: .utf8)
            let fixed = try await Processes.command(["validate", rejected])
            #expect(fixed.status == 0, "\(fixed.out)\n\(fixed.err)")

            let rerun = try await Processes.command(["rerun", rejected, "--state-dir", setup.folder.path + "/state"])
            #expect(rerun.status == 0, "\(rerun.out)\n\(rerun.err)")
            #expect(rerun.out.contains("accepted \(rejected) again"), "\(rerun.out)")
            let after = try await cronRun(setup)
            #expect(after.status == 0, "\(after.out)\n\(after.err.suffix(2000))")
            try Processes.expectOutputs(setup.folder.path + "/out", count: 1)
        }
    }

    @Test("a spec written in a staging folder validates with --base pointing at the jobs folder, then runs once moved in")
    func stagingThenMove() async throws {
        try await withSetup("cron-stage") { setup in
            try writeImage("tower.png", in: setup.jobs)
            let staging = setup.folder.path + "/staging"
            try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
            try spec("tower", image: "tower.png").write(toFile: staging + "/tower.yaml", atomically: true, encoding: .utf8)

            let alone = try await Processes.command(["validate", staging + "/tower.yaml"])
            #expect(alone.status == 1 && alone.out.contains("no such file"), "without --base the staging folder is the base: \(alone.out)")
            let based = try await Processes.command(["validate", "--base", setup.jobs, staging + "/tower.yaml"])
            #expect(based.status == 0, "\(based.out)\n\(based.err)")
            let plan = try await Processes.command(["plan", "--base", setup.jobs, staging + "/tower.yaml"])
            #expect(plan.status == 0 && plan.out.contains("$0.56"), "\(plan.out)\n\(plan.err)")

            try FileManager.default.moveItem(atPath: staging + "/tower.yaml", toPath: setup.jobs + "/tower.yaml")
            let run = try await cronRun(setup)
            #expect(run.status == 0, "\(run.out)\n\(run.err.suffix(2000))")
            try Processes.expectOutputs(setup.folder.path + "/out", count: 1)
        }
    }

    @Test("while fal does not answer, run --once gives up after --give-up-after with exit 5 and its job left at fal; the next run finishes it without paying twice")
    func givesUpOnFal() async throws {
        try await withSetup("cron-outage", emulator: ["--run-seconds", "0.05", "--fault", "reset=1@status,status-stream"]) { setup in
            try writeImage("a.png", in: setup.jobs)
            try spec("patient", image: "a.png").write(toFile: setup.jobs + "/patient.yaml", atomically: true, encoding: .utf8)
            let outage = try await cronRun(setup, ["--give-up-after", "2s"])
            #expect(outage.status == 5, "\(outage.out)\n\(outage.err.suffix(2000))")
            #expect(outage.out.contains("fal has not answered for 2 s (give_up_after)"), "\(outage.out)")
            let status = try await Processes.command(["status", "--state-dir", setup.folder.path + "/state"])
            #expect(status.out.contains("in_queue 1") || status.out.contains("in_progress 1"), "\(status.out)")
            #expect(try await setup.emulator.counters().submitCalls == 1)

            try await setup.emulator.configure { $0.faults = [] }
            let recovered = try await cronRun(setup, ["--give-up-after", "2s"])
            #expect(recovered.status == 0, "\(recovered.out)\n\(recovered.err.suffix(2000))")
            try Processes.expectOutputs(setup.folder.path + "/out", count: 1)
            let counters = try await setup.emulator.counters()
            #expect(counters.submitCalls == 1 && counters.requestsCreated == 1)
        }
    }

    @Test("one taker per drop folder: a run --once on a daemon's jobs folder, even with another store (--simulate), exits 3 and moves nothing; --simulate never takes the configured folder unasked")
    func oneTakerPerFolder() async throws {
        try await withSetup("cron-lock") { setup in
            let daemon = try Processes.daemon(setup.emulator, folder: setup.folder)
            await daemon.waitForStderr("watching ")
            let other = setup.folder.path + "/other-state"
            let busy = try await Processes.command(["run", "--once", "--simulate", "--jobs", setup.jobs, "--state-dir", other, "--settle", "0s"])
            #expect(busy.status == 3, "\(busy)")
            #expect(busy.err.contains("another kling-batch is taking files from \(setup.jobs)"), "\(busy.err)")
            let unasked = try await Processes.command(["run", "--once", "--simulate", "--state-dir", other])
            #expect(unasked.status == 64 && unasked.err.contains("would take the real jobs folder"), "\(unasked)")
            daemon.signal(SIGTERM)
            #expect(await daemon.waitForExit() == 0)
        }
    }
}
