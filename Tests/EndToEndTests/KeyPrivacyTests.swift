import FalEmulator
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A hook runs as the runner's own user; withholding FAL_KEY from its environment is not enough if it can read the
/// runner's. These tests run kling-batch as an unprivileged user (as the Debian package's service does), since
/// root reads any process's /proc files whatever the runner does.
@Suite("The key is out of reach of the runner's own commands", .serialized, .timeLimit(.minutes(5)))
struct KeyPrivacyTests {
    static let key = "privacy-test-key-1a2b3c4d5e6f"
    static let nobody = "65534"

    /// `kling-batch` with `arguments` as the user nobody, the key in its environment.
    func asNobody(_ arguments: [String]) throws -> ChildProcess {
        try ChildProcess(
            at: URL(fileURLWithPath: "/usr/bin/setpriv"),
            ["--reuid=\(Self.nobody)", "--regid=\(Self.nobody)", "--clear-groups", try ChildProcess.product("kling-batch").path] + arguments,
            environment: Processes.environment(key: Self.key, ["HOME": "/nonexistent"]))
    }

    /// Root, to start kling-batch as nobody (CI runs as root); elsewhere the test is skipped, saying why.
    static let canSwitchUser = FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") && getuid() == 0

    @Test("an on_complete hook, same user as the runner, cannot read the runner's environment (FAL_KEY) from /proc; the job completes",
          .enabled(if: canSwitchUser, "needs root and setpriv to run kling-batch as nobody (CI runs as root)"))
    func hookCannotReadParent() async throws {
        let folder = try TemporaryDirectory("key-privacy")
        defer { folder.remove() }
        let probe = folder.path + "/probe.txt"
        // The hook finds the kling-batch process above it and tries to read its environment, as a curious script would.
        let hook = folder.path + "/hook.sh"
        try """
            #!/bin/sh
            p=$PPID
            while [ "$p" -gt 1 ] && [ "$(cat /proc/$p/comm)" != kling-batch ]; do p=$(cut -d' ' -f4 /proc/$p/stat); done
            echo "runner $(cat /proc/$p/comm)" > "\(probe)"
            if tr '\\0' '\\n' < /proc/$p/environ > "\(probe).environ" 2>/dev/null; then echo readable >> "\(probe)"; else echo denied >> "\(probe)"; fi
            """.write(toFile: hook, atomically: true, encoding: .utf8)
        chmod(hook, 0o755)
        let jobs = folder.path + "/jobs"
        try SpecWriter.writeJobs(count: 1, in: URL(fileURLWithPath: jobs), sharedImages: 1)
        try "on_complete: \(hook)\n".write(toFile: folder.path + "/config.yaml", atomically: true, encoding: .utf8)
        let owned = Process()
        owned.executableURL = URL(fileURLWithPath: "/bin/chown")
        owned.arguments = ["-R", "\(Self.nobody):\(Self.nobody)", folder.path]
        try #require(try owned.runToEnd() == 0)

        let emulator = try await EmulatorProcess(["--queue-seconds", "0", "--run-seconds", "0"])
        let run = try asNobody([
            "run", "--once", "--fal-url", emulator.url.absoluteString, "--state-dir", folder.path + "/state", "--out", folder.path + "/out",
            "--config", folder.path + "/config.yaml", "--log-level", "info", jobs,
        ])
        #expect(await run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        let counters = try await emulator.counters()
        #expect(counters.requestsCreated == 1 && counters.duplicateSubmissions == 0)
        await emulator.stop()
        let said = try String(contentsOfFile: probe, encoding: .utf8)
        #expect(said == "runner kling-batch\ndenied\n", "the hook, as the runner's user: \(said)")
        let leaked = ((try? String(contentsOfFile: probe + ".environ", encoding: .utf8)) ?? "").contains(Self.key)
        #expect(!leaked, "the hook read the key from the runner's environment")
        try Processes.expectOutputs(folder.path + "/out", count: 1)
    }
}
