import FalEmulator
import Foundation
import Testing
import TestSupport

/// `kling-batch daemon` as its own process: files dropped every way people drop them, signals, systemd's socket.
@Suite("The daemon", .serialized, .timeLimit(.minutes(5)))
struct DaemonTests {
    /// A daemon on `folder` against `emulator`.
    func daemon(_ emulator: EmulatorProcess, folder: TemporaryDirectory, settle: String = "2s", extra: [String] = [], environment extraEnvironment: [String: String] = [:]) throws -> ChildProcess {
        var environment = ProcessInfo.processInfo.environment
        environment["FAL_KEY"] = "daemon-test-key"
        for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "KLING_BATCH_TEST_CRASH"] { environment.removeValue(forKey: name) }
        environment.merge(extraEnvironment) { _, new in new }
        return try ChildProcess("kling-batch", [
            "daemon", "--fal-url", emulator.url.absoluteString, "--jobs", folder.path + "/jobs", "--state-dir", folder.path + "/state",
            "--out", folder.path + "/out", "--concurrency", "8", "--settle", settle, "--log-level", "info",
        ] + extra, environment: environment)
    }

    /// Spec files made in `stage`, with their images already in `jobs/refs` where they will be resolved.
    func stage(_ folder: TemporaryDirectory, count: Int) throws -> [String] {
        let stage = folder.url.appendingPathComponent("stage")
        let paths = try SpecWriter.writeJobs(count: count, in: stage, sharedImages: 3)
        try FileManager.default.createDirectory(atPath: folder.path + "/jobs", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: stage.path + "/refs", toPath: folder.path + "/jobs/refs")
        return paths
    }

    /// Writes `data` into `path` in `pieces` separate open-append-close writes 100 ms apart, like a slow scp or an
    /// editor. On a thread of its own: a pause on the test's few shared threads took seconds under a loaded suite,
    /// longer than the daemon's settle time, so the daemon rightly read a file the test had not finished.
    func writeSlowly(_ data: Data, to path: String, pieces: Int = 3) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            Thread.detachNewThread {
                continuation.resume(with: Result { try Self.writePieces(data, to: path, pieces: pieces) })
            }
        }
    }

    private static func writePieces(_ data: Data, to path: String, pieces: Int) throws {
        let size = (data.count + pieces - 1) / pieces
        for start in stride(from: 0, to: data.count, by: size) {
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            guard fd >= 0 else { throw HarnessError("open \(path): errno \(errno)") }
            let piece = [UInt8](data[start..<min(data.count, start + size)])
            let written = write(fd, piece, piece.count)
            close(fd)
            guard written == piece.count else { throw HarnessError("short write to \(path)") }
            usleep(100_000)
        }
    }

    func files(in folder: String, suffix: String) -> [String] {
        ((try? FileManager.default.subpathsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(suffix) }.sorted()
    }

    @Test("30 files dropped while it runs (slow writes, moves, copies, invalid, two identical): each valid job runs once, every invalid file is set aside with its errors")
    func dropFolder() async throws {
        let folder = try TemporaryDirectory("daemon-drop")
        defer { folder.remove() }
        let specs = try stage(folder, count: 20)
        let jobs = folder.path + "/jobs"
        let emulator = try await EmulatorProcess(["--run-seconds", "0.3", "--queue-seconds", "0.05", "--capacity", "8"])
        let daemon = try daemon(emulator, folder: folder)
        await daemon.waitForStderr("watching ")

        // 10 moved in, 7 written slowly in place, 2 copied in place.
        for spec in specs[0..<10] { try FileManager.default.moveItem(atPath: spec, toPath: jobs + "/" + (spec as NSString).lastPathComponent) }
        for spec in specs[10..<17] { try await writeSlowly(try Data(contentsOf: URL(fileURLWithPath: spec)), to: jobs + "/" + (spec as NSString).lastPathComponent) }
        for spec in specs[17..<19] { try FileManager.default.copyItem(atPath: spec, toPath: jobs + "/" + (spec as NSString).lastPathComponent) }
        // Two identical files: the first runs, the second is the same content and must not.
        try FileManager.default.moveItem(atPath: specs[19], toPath: jobs + "/twin-a.yaml")
        await daemon.waitForStderr("accepted twin-a.yaml")
        try FileManager.default.copyItem(atPath: jobs + "/accepted", toPath: folder.path + "/ignored-copy")
        let twin = try Data(contentsOf: URL(fileURLWithPath: jobs + "/accepted/" + files(in: jobs + "/accepted", suffix: "twin-a.yaml")[0]))
        try twin.write(to: URL(fileURLWithPath: folder.path + "/twin-b.yaml"))
        try FileManager.default.moveItem(atPath: folder.path + "/twin-b.yaml", toPath: jobs + "/twin-b.yaml")
        // 9 invalid files, each wrong in its own way.
        let invalid = [
            "empty-prompt.yaml": "prompt: \"\"\n",
            "long.yaml": "prompt: a cat\nduration: 12\n",
            "aspect.yaml": "prompt: a cat\naspect_ratio: 4:3\n",
            "missing-image.yaml": "prompt: \"@Image1 flies\"\nimage_urls: [refs/nope.png]\n",
            "syntax.yaml": "prompt: [unclosed\n",
            "unknown-key.yaml": "prompt: a cat\ndurration: 5\n",
            "too-many.yaml": "prompt: a\nimage_urls: [" + Array(repeating: "refs/shared-0.png", count: 8).joined(separator: ", ") + "]\n",
            "element-ref.yaml": "prompt: \"@Element3 walks\"\n",
            "binary.json": "\u{0}\u{1}\u{2}not a spec",
        ]
        for (name, text) in invalid.sorted(by: { $0.key < $1.key }) {
            try text.write(toFile: folder.path + "/" + name, atomically: false, encoding: .utf8)
            try FileManager.default.moveItem(atPath: folder.path + "/" + name, toPath: jobs + "/" + name)
        }
        // Editor and temp files are never read.
        try "prompt: never".write(toFile: jobs + "/.hidden.yaml", atomically: false, encoding: .utf8)
        try "prompt: never".write(toFile: jobs + "/draft.yaml.tmp", atomically: false, encoding: .utf8)

        await daemon.waitForStderr("completed:", count: 20)
        await daemon.waitForStderr("rejected ", count: 9)
        await daemon.waitForStderr("duplicate: twin-b.yaml")
        daemon.signal(SIGTERM)
        let status = await daemon.waitForExit()
        #expect(status == 0, "\(daemon.stderr.suffix(3000))")

        #expect(files(in: folder.path + "/out", suffix: ".mp4").count == 20)
        #expect(files(in: folder.path + "/out", suffix: ".json").count == 20)
        let accepted = try FileManager.default.contentsOfDirectory(atPath: jobs + "/accepted").flatMap { day in
            try FileManager.default.contentsOfDirectory(atPath: jobs + "/accepted/" + day)
        }
        #expect(accepted.count == 20, "\(accepted.sorted())")
        let rejected = try FileManager.default.contentsOfDirectory(atPath: jobs + "/rejected").sorted()
        for name in invalid.keys.sorted() + ["twin-b.yaml"] {
            #expect(rejected.contains(name), "\(name) not in rejected/: \(rejected)")
            let errors = (try? String(contentsOfFile: jobs + "/rejected/\(name).errors.txt", encoding: .utf8)) ?? ""
            #expect(errors.contains(name == "twin-b.yaml" ? "same content" : "error"), "\(name).errors.txt: \(errors)")
        }
        #expect(try String(contentsOfFile: jobs + "/rejected/long.yaml.errors.txt", encoding: .utf8).contains("duration"))
        let left = try FileManager.default.contentsOfDirectory(atPath: jobs).sorted()
        #expect(left == [".hidden.yaml", "accepted", "draft.yaml.tmp", "refs", "rejected"])

        let counters = try await emulator.counters()
        #expect(counters.requestsCreated == 20)
        #expect(counters.duplicateSubmissions == 0)
        await emulator.stop()
    }

    @Test("SIGTERM in the middle of a run exits cleanly; the restarted daemon finishes every job without submitting any twice")
    func sigtermAndRestart() async throws {
        let folder = try TemporaryDirectory("daemon-term")
        defer { folder.remove() }
        let specs = try stage(folder, count: 12)
        for spec in specs { try FileManager.default.moveItem(atPath: spec, toPath: folder.path + "/jobs/" + (spec as NSString).lastPathComponent) }
        // Held at fal until the second daemon runs: the first is stopped in the middle however late the test acts.
        let emulator = try await EmulatorProcess(["--run-seconds", "1", "--queue-seconds", "0.1", "--capacity", "4", "--hold"])

        let first = try daemon(emulator, folder: folder, settle: "100ms")
        await first.waitForStderr("submitted (attempt", count: 6)
        first.signal(SIGTERM)
        #expect(await first.waitForExit() == 0, "\(first.stderr.suffix(2000))")
        #expect(first.stderr.contains("will be resumed at the next start"))
        let doneBefore = first.stderr.components(separatedBy: "completed:").count - 1
        #expect(doneBefore < 12, "the run was meant to be stopped in the middle")

        try await emulator.configure { $0.holdRequests = false }
        #expect(try await emulator.releaseRequests() > 0)
        let second = try daemon(emulator, folder: folder, settle: "100ms")
        await second.waitForStderr("completed:", count: 12 - doneBefore)
        second.signal(SIGTERM)
        #expect(await second.waitForExit() == 0)

        #expect(files(in: folder.path + "/out", suffix: ".mp4").count == 12)
        let counters = try await emulator.counters()
        #expect(counters.requestsCreated == 12, "fal saw \(counters.requestsCreated) submissions for 12 jobs")
        #expect(counters.duplicateSubmissions == 0)
        await emulator.stop()
    }

    @Test("speaks systemd's notify protocol: READY=1, STATUS=, RELOADING=1 on SIGHUP, STOPPING=1")
    func notifySocket() async throws {
        let folder = try TemporaryDirectory("daemon-notify")
        defer { folder.remove() }
        _ = try stage(folder, count: 0)
        let socket = try NotifySocket(path: folder.path + "/notify.sock")
        defer { socket.close() }
        let emulator = try await EmulatorProcess()
        let daemon = try daemon(emulator, folder: folder, environment: ["NOTIFY_SOCKET": socket.path, "WATCHDOG_USEC": "400000"])

        _ = await socket.first(startingWith: "READY=1")
        let status = await socket.first(startingWith: "STATUS=")
        #expect(status.contains("0 running, 0 queued"), "\(status)")
        #expect(status.contains("$0.00 today"), "\(status)")
        _ = await socket.first(startingWith: "WATCHDOG=1")
        daemon.signal(SIGHUP)
        let reloading = await socket.first(startingWith: "RELOADING=1")
        #expect(reloading.contains("MONOTONIC_USEC="), "\(reloading)")
        _ = await socket.message(startingWith: "READY=1", count: 2)
        daemon.signal(SIGTERM)
        _ = await socket.first(startingWith: "STOPPING=1")
        #expect(await daemon.waitForExit() == 0)
        let order = socket.messages.map { $0.split(separator: "=").first.map(String.init) ?? $0 }
        #expect(order.firstIndex(of: "READY") ?? .max < order.firstIndex(of: "STOPPING") ?? -1)
        await emulator.stop()
    }

    @Test("a second daemon on the same state folder exits non-zero and names the first one's pid")
    func secondDaemonRefused() async throws {
        let folder = try TemporaryDirectory("daemon-second")
        defer { folder.remove() }
        _ = try stage(folder, count: 0)
        let emulator = try await EmulatorProcess()
        let first = try daemon(emulator, folder: folder)
        await first.waitForStderr("watching ")
        let second = try daemon(emulator, folder: folder)
        let status = await second.waitForExit()
        #expect(status != 0)
        #expect(second.stderr.contains("pid \(first.pid)"), "\(second.stderr)")
        first.signal(SIGTERM)
        #expect(await first.waitForExit() == 0)
        await emulator.stop()
    }
}
