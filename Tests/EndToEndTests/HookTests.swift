import FalEmulator
import Foundation
import KlingCore
import Testing
import TestSupport

/// The on_complete hook: once per completed job, told where everything is, retried when it fails, killed when it
/// hangs, and never the reason a job fails.
@Suite("on_complete hooks", .serialized, .timeLimit(.minutes(5)))
struct HookTests {
    /// A batch of `count` 3 s jobs with meta, and a config file with `settings`.
    func setUp(_ folder: TemporaryDirectory, count: Int, settings: String) throws -> (spec: String, config: String) {
        let jobs = folder.path + "/jobs"
        try FileManager.default.createDirectory(atPath: jobs + "/refs", withIntermediateDirectories: true)
        try SpecWriter.png(salt: "hooks").write(to: URL(fileURLWithPath: jobs + "/refs/a.png"))
        try "takes: \(count)\nname: \"clip-{take}\"\nprompt: \"@Image1, take {take}\"\nimage_urls: [refs/a.png]\nduration: 3\nmeta: {client: acme, take: \"{take}\"}\n"
            .write(toFile: jobs + "/hooked.yaml", atomically: true, encoding: .utf8)
        try settings.write(toFile: folder.path + "/config.yaml", atomically: true, encoding: .utf8)
        return (jobs + "/hooked.yaml", folder.path + "/config.yaml")
    }

    /// A small script the hook runs, written into the test's folder.
    func script(_ folder: TemporaryDirectory, _ body: String) throws -> String {
        let path = folder.path + "/hook.sh"
        try "#!/bin/sh\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    func manifest(_ path: String) throws -> JSONValue { try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: path))) }

    @Test("runs once per completed job with the video, manifest, batch, job, request id and meta in its environment, and never the key")
    func environment() async throws {
        let folder = try TemporaryDirectory("hook-env")
        defer { folder.remove() }
        let hook = try script(folder, "env | grep -E '^(KLING_BATCH_|FAL_)' | sort > \"\(folder.path)/env-$KLING_BATCH_JOB.txt\"; echo shipped $KLING_BATCH_JOB")
        let (spec, config) = try setUp(folder, count: 3, settings: "on_complete: \(hook)\n")
        let emulator = try await EmulatorProcess(["--queue-seconds", "0", "--run-seconds", "0"])
        let run = try Processes.runOnce(emulator, state: folder.path + "/state", out: folder.path + "/out", jobs: spec, extra: ["--config", config])
        #expect(await run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix("env-") }.sorted()
        #expect(files == ["env-clip-1.txt", "env-clip-2.txt", "env-clip-3.txt"])
        let lines = try String(contentsOfFile: folder.path + "/env-clip-2.txt", encoding: .utf8).split(separator: "\n").map(String.init)
        var values: [String: String] = [:]
        for line in lines { if let equals = line.firstIndex(of: "=") { values[String(line[..<equals])] = String(line[line.index(after: equals)...]) } }
        #expect(values["KLING_BATCH_JOB"] == "clip-2" && values["KLING_BATCH_BATCH"] == "hooked")
        #expect(values["KLING_BATCH_META"] == #"{"client":"acme","take":"2"}"#)
        #expect(values["KLING_BATCH_VIDEO"]?.hasSuffix("/hooked/clip-2.mp4") == true && FileManager.default.fileExists(atPath: values["KLING_BATCH_VIDEO"] ?? ""))
        let manifestPath = try #require(values["KLING_BATCH_MANIFEST"])
        #expect(values["KLING_BATCH_REQUEST_ID"] == (try manifest(manifestPath))["request_id"]?.stringValue)
        #expect(values.keys.allSatisfy { !$0.hasPrefix("FAL_") }, "the key is withheld from hooks: \(values.keys.sorted())")
        let recorded = try manifest(manifestPath)["on_complete"]
        #expect(recorded?["state"] == "done" && recorded?["exit_status"] == 0 && recorded?["runs"] == 1)
        #expect(recorded?["output"] == ["shipped clip-2"])
    }

    @Test("a failing hook is retried and recorded while its job stays completed")
    func retried() async throws {
        let folder = try TemporaryDirectory("hook-retry")
        defer { folder.remove() }
        // Fails on its first run (and says why), succeeds on the second.
        let hook = try script(folder, "if [ ! -e \"\(folder.path)/ran-once\" ]; then touch \"\(folder.path)/ran-once\"; echo remote unreachable; exit 3; fi; echo uploaded")
        let (_, config) = try setUp(folder, count: 1, settings: "on_complete: \(hook)\non_complete_retry: 100ms\n")
        let emulator = try await EmulatorProcess(["--queue-seconds", "0", "--run-seconds", "0"])
        let daemon = try Processes.daemon(emulator, folder: folder, extra: ["--config", config])
        await daemon.waitForStderr("on_complete failed (exit 3, run 1 of 5)")
        await daemon.waitForStderr("on_complete ran (exit 0)")
        let shown = try await Processes.command(["show", "hooked/clip-1", "--json", "--state-dir", folder.path + "/state"])
        let job = try JSONValue.parse(Data(shown.out.utf8))
        #expect(job["state"] == "completed")
        #expect(job["on_complete"]?["state"] == "done" && job["on_complete"]?["runs"] == 2, "\(shown.out)")
        let messages = job["events"]?.arrayValue?.compactMap { $0["message"]?.stringValue } ?? []
        #expect(messages.contains { $0.hasPrefix("on_complete failed (exit 3, run 1 of 5)") && $0.hasSuffix(": remote unreachable") }, "\(messages)")
        let recorded = try manifest(job["manifest"]?.stringValue ?? "")["on_complete"]
        #expect(recorded?["state"] == "done" && recorded?["runs"] == 2 && recorded?["output"] == ["uploaded"])
        let status = try await Processes.command(["status", "--json", "--state-dir", folder.path + "/state"])
        #expect(try JSONValue.parse(Data(status.out.utf8))["on_complete"] == ["done": 1])
        daemon.signal(SIGTERM)
        _ = await daemon.waitForExit()
    }

    @Test("a hook that hangs is killed at its timeout; the job stays completed and the hook waits for its retry")
    func hangs() async throws {
        let folder = try TemporaryDirectory("hook-hang")
        defer { folder.remove() }
        let (spec, config) = try setUp(folder, count: 1, settings: "on_complete: sleep 600\non_complete_timeout: 1s\n")
        let emulator = try await EmulatorProcess(["--queue-seconds", "0", "--run-seconds", "0"])
        let started = ContinuousClock.now
        let run = try Processes.runOnce(emulator, state: folder.path + "/state", out: folder.path + "/out", jobs: spec, extra: ["--config", config])
        #expect(await run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        #expect(ContinuousClock.now - started < .seconds(300), "the run did not wait for the hung hook")
        #expect(run.stderr.contains("on_complete failed (killed at its timeout, run 1 of 5)"), "\(run.stderr.suffix(2000))")
        let shown = try await Processes.command(["show", "hooked/clip-1", "--json", "--state-dir", folder.path + "/state"])
        let job = try JSONValue.parse(Data(shown.out.utf8))
        #expect(job["state"] == "completed" && job["on_complete"]?["state"] == "pending")
        let recorded = try manifest(job["manifest"]?.stringValue ?? "")["on_complete"]
        #expect(recorded?["timed_out"] == true && recorded?["state"] == "retrying" && recorded?["exit_status"] == .null)
        let pgrep = Process()
        pgrep.executableURL = URL(fileURLWithPath: "/usr/bin/pgrep")
        pgrep.arguments = ["-x", "-f", "sleep 600"]
        pgrep.standardOutput = FileHandle.nullDevice
        #expect(try pgrep.runToEnd() == 1, "the hung hook was not killed")
    }

    @Test("a spec chooses a hook the config names, or none; a name the config lacks is recorded as a failed hook, the job completed")
    func chosenBySpec() async throws {
        let folder = try TemporaryDirectory("hook-choice")
        defer { folder.remove() }
        let hook = try script(folder, "echo \"$KLING_BATCH_BATCH\" >> \"\(folder.path)/uploaded.txt\"")
        let (_, config) = try setUp(folder, count: 1, settings: "on_complete: /bin/false\nhooks:\n  upload: \(hook)\n")
        let jobs = folder.path + "/jobs"
        for (name, choice) in [("chosen", "upload"), ("quiet", "none"), ("typo", "uplaod")] {
            try "on_complete: \(choice)\nprompt: \"@Image1 \(name)\"\nimage_urls: [refs/a.png]\nduration: 3\n".write(toFile: jobs + "/\(name).yaml", atomically: true, encoding: .utf8)
        }
        try FileManager.default.removeItem(atPath: jobs + "/hooked.yaml")
        let emulator = try await EmulatorProcess(["--queue-seconds", "0", "--run-seconds", "0"])
        let run = try Processes.runOnce(emulator, state: folder.path + "/state", out: folder.path + "/out", jobs: jobs, extra: ["--config", config])
        #expect(await run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        #expect(try String(contentsOfFile: folder.path + "/uploaded.txt", encoding: .utf8) == "chosen\n")
        let typo = try JSONValue.parse(Data(try await Processes.command(["show", "typo/typo", "--json", "--state-dir", folder.path + "/state"]).out.utf8))
        #expect(typo["state"] == "completed" && typo["on_complete"]?["state"] == "failed")
        #expect(typo["on_complete"]?["last"]?["error"]?.stringValue?.contains("names the hook 'uplaod'") == true, "\(typo)")
        let quiet = try JSONValue.parse(Data(try await Processes.command(["show", "quiet/quiet", "--json", "--state-dir", folder.path + "/state"]).out.utf8))
        #expect(quiet["state"] == "completed" && quiet["on_complete"] == .null)
    }
}
