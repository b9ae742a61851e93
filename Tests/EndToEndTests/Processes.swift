import FalEmulator
import Foundation
import Testing
import TestSupport

/// How the end-to-end suites start kling-batch: a clean environment, fast settings, paths in one folder.
enum Processes {
    /// The test's environment without anything that would change a child's behaviour, plus a key.
    static func environment(key: String = "end-to-end-test-key", _ extra: [String: String] = [:]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["FAL_KEY"] = key
        // Posters are ffmpeg's work, about 0.1 s of CPU per video: off, except where a test asks for them (`posters`).
        environment["KLING_BATCH_POSTERS"] = "off"
        for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "KLING_BATCH_TEST_CRASH", "KLING_BATCH_CONFIG", "STATE_DIRECTORY"] {
            environment.removeValue(forKey: name)
        }
        environment.merge(extra) { _, new in new }
        return environment
    }

    /// The environment with poster frames on (ffmpeg from PATH), for the tests of the review page and posters.
    static let posters = ["KLING_BATCH_POSTERS": "auto"]

    /// `kling-batch run --once` of `jobs` against `emulator`, with state and output where asked.
    static func runOnce(
        _ emulator: EmulatorProcess, state: String, out: String, jobs: String, extra: [String] = [], environment: [String: String] = environment()
    ) throws -> ChildProcess {
        try ChildProcess("kling-batch", [
            "run", "--once", "--fal-url", emulator.url.absoluteString, "--state-dir", state, "--out", out,
            "--reconcile-interval", "200ms", "--reconcile-grace", "20s", "--local-recheck", "200ms", "--log-level", "info", jobs,
        ] + extra, environment: environment)
    }

    /// `kling-batch daemon` on `<folder>/jobs`, with state and output in `folder`.
    static func daemon(
        _ emulator: EmulatorProcess, folder: TemporaryDirectory, extra: [String] = [], environment: [String: String] = environment()
    ) throws -> ChildProcess {
        try ChildProcess("kling-batch", [
            "daemon", "--fal-url", emulator.url.absoluteString, "--jobs", folder.path + "/jobs", "--state-dir", folder.path + "/state",
            "--out", folder.path + "/out", "--settle", "100ms", "--local-recheck", "200ms", "--log-level", "info",
        ] + extra, environment: environment)
    }

    /// Writes `count` specs in a staging folder and moves them into `<folder>/jobs` (images copied first).
    static func drop(_ count: Int, into folder: TemporaryDirectory, prefix: String = "job") throws {
        let stage = folder.url.appendingPathComponent("stage-\(prefix)")
        let specs = try SpecWriter.writeJobs(count: count, in: stage, sharedImages: 1, prefix: prefix)
        let jobs = folder.path + "/jobs"
        try FileManager.default.createDirectory(atPath: jobs + "/refs", withIntermediateDirectories: true)
        for image in try FileManager.default.contentsOfDirectory(atPath: stage.path + "/refs") where !FileManager.default.fileExists(atPath: jobs + "/refs/" + image) {
            try FileManager.default.copyItem(atPath: stage.path + "/refs/" + image, toPath: jobs + "/refs/" + image)
        }
        for spec in specs { try FileManager.default.moveItem(atPath: spec, toPath: jobs + "/" + (spec as NSString).lastPathComponent) }
    }

    /// A kling-batch command run to its end: exit status, stdout and stderr.
    static func command(_ arguments: [String], environment: [String: String] = environment()) async throws -> (status: Int32, out: String, err: String) {
        let child = try ChildProcess("kling-batch", arguments, environment: environment)
        let status = await child.waitForExit()
        return (status, child.stdout, child.stderr)
    }

    /// Every file under `folder` whose name ends with `suffix`, relative to it.
    static func files(in folder: String, suffix: String) -> [String] {
        ((try? FileManager.default.subpathsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(suffix) }.sorted()
    }

    /// Checks what a finished run left: `count` playable videos, each with its manifest, and nothing half-written.
    static func expectOutputs(_ out: String, count: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let videos = files(in: out, suffix: ".mp4")
        #expect(videos.count == count, "videos: \(videos.count)", sourceLocation: sourceLocation)
        #expect(files(in: out, suffix: ".json").count == count, sourceLocation: sourceLocation)
        for video in videos {
            #expect(try MP4Inspector(file: URL(fileURLWithPath: out + "/" + video)).isPlayable, "\(video)", sourceLocation: sourceLocation)
        }
        // A poster being made (`.<job>.jpg.tmp-<pid>`) is no job's output: a running daemon makes them after the video.
        let partials = ((try? FileManager.default.subpathsOfDirectory(atPath: out)) ?? [])
            .filter { ($0.hasSuffix(".part") || $0.contains(".tmp-")) && !$0.contains(".jpg.") }
        #expect(partials.isEmpty, "left behind: \(partials)", sourceLocation: sourceLocation)
    }
}

/// Tests that mount file systems need root; CI runs as root. Elsewhere they are skipped, saying why.
let needsRoot = Testing.ConditionTrait.enabled(if: Tmpfs.isAvailable, "needs root to mount a small tmpfs (CI runs as root)")
