import FalEmulator
import Foundation
import Testing
import TestSupport

/// Poster frames: made with ffmpeg beside each finished video when it is installed, used by the review page and the
/// contact sheet, and never a reason for a job to wait or fail (off, a missing ffmpeg, a video it cannot read).
@Suite("Poster frames", .serialized, .timeLimit(.minutes(5)))
struct PosterTests {
    static let ffmpeg = "/usr/bin/ffmpeg"

    /// Whether ffmpeg is there; CI installs it (`scripts/setup --tests`), so its absence is a failure, said plainly.
    static func requireFFmpeg() -> Bool {
        guard FileManager.default.isExecutableFile(atPath: ffmpeg) else {
            Issue.record("ffmpeg is not installed: `scripts/setup --tests` installs it")
            return false
        }
        return true
    }

    /// Runs the review fixture's three jobs (one refused by fal) with `run --once`; returns the output root.
    static func runBatch(in folder: TemporaryDirectory, environment: [String: String] = Processes.posters) async throws -> (out: String, stderr: String) {
        try ReviewFixtures.writeSpec(in: folder.path + "/jobs", prompt: "@Image1 a quiet harbour")
        let emulator = try await EmulatorProcess(["--run-seconds", "0.05", "--fault", "job-rejected=1#1"])
        let run = try Processes.runOnce(emulator, state: folder.path + "/state", out: folder.path + "/out", jobs: folder.path + "/jobs/review.yaml",
                                        extra: ["--concurrency", "1"], environment: Processes.environment(environment))
        #expect(await run.waitForExit() == 1, "one job is refused by fal, the other two complete: \(run.stderr.suffix(1500))")
        await emulator.stop()
        return (folder.path + "/out", run.stderr)
    }

    /// Every file under `root` whose name ends with `suffix`.
    static func files(under root: String, endingWith suffix: String) -> [String] {
        ((try? FileManager.default.subpathsOfDirectory(atPath: root)) ?? []).filter { $0.hasSuffix(suffix) }.sorted().map { root + "/" + $0 }
    }

    @Test("run --once makes a JPEG poster beside each finished video, and the contact sheet shows it")
    func made() async throws {
        guard Self.requireFFmpeg() else { return }
        let folder = try TemporaryDirectory("posters")
        defer { folder.remove() }
        let (out, _) = try await Self.runBatch(in: folder)
        let videos = Self.files(under: out, endingWith: ".mp4")
        #expect(videos.count == 2)
        for video in videos {
            let poster = try Data(contentsOf: URL(fileURLWithPath: (video as NSString).deletingPathExtension + ".jpg"))
            #expect(Array(poster.prefix(3)) == [0xFF, 0xD8, 0xFF], "\(video)'s poster is a JPEG")
        }
        #expect(Self.files(under: out, endingWith: ".jpg").count == 2, "the failed job has no video and no poster")
        #expect(Self.files(under: out, endingWith: "").filter { $0.contains(".tmp-") }.isEmpty, "no temp file is left")
        let sheet = try String(contentsOfFile: try #require(Self.files(under: out, endingWith: "index.html").first), encoding: .utf8)
        #expect(sheet.contains("poster=\"./calm-one.jpg\"") && sheet.contains("poster=\"./calm-two.jpg\""), "the sheet was rewritten with the posters")
    }

    @Test("posters: off, or an ffmpeg that is not there, makes none and fails nothing")
    func offOrMissing() async throws {
        for (setting, warning) in [("off", nil), ("/nonexistent/ffmpeg", "posters: /nonexistent/ffmpeg is not an executable program")] {
            let folder = try TemporaryDirectory("posters-off")
            defer { folder.remove() }
            let (out, stderr) = try await Self.runBatch(in: folder, environment: ["KLING_BATCH_POSTERS": setting])
            #expect(Self.files(under: out, endingWith: ".mp4").count == 2)
            #expect(Self.files(under: out, endingWith: ".jpg").isEmpty, "no poster with posters: \(setting)")
            if let warning { #expect(stderr.contains(warning)) }
        }
    }

    @Test("serve makes the posters a run left; a video ffmpeg cannot read gets none, and leaves no temp file")
    func serveCatchesUp() async throws {
        guard Self.requireFFmpeg() else { return }
        let folder = try TemporaryDirectory("posters-serve")
        defer { folder.remove() }
        let (out, _) = try await Self.runBatch(in: folder, environment: ["KLING_BATCH_POSTERS": "off"])
        let videos = Self.files(under: out, endingWith: ".mp4")
        try #require(videos.count == 2)
        try Data("not a video".utf8).write(to: URL(fileURLWithPath: videos[0]))
        let serve = try ChildProcess("kling-batch", [
            "serve", "--state-dir", folder.path + "/state", "--http", "127.0.0.1:0",
        ], environment: Processes.environment(Processes.posters.merging(["KLING_BATCH_LOG_LEVEL": "debug"]) { $1 }))
        _ = try await serve.waitForLine(startingWith: "review page")
        await serve.waitForStderr("posters: no poster for \(videos[0])")
        await serve.waitForStderr("poster: " + (videos[1] as NSString).deletingPathExtension + ".jpg")
        serve.signal(SIGTERM)
        #expect(await serve.waitForExit() == 0)
        #expect(!FileManager.default.fileExists(atPath: (videos[0] as NSString).deletingPathExtension + ".jpg"))
        #expect(FileManager.default.fileExists(atPath: (videos[1] as NSString).deletingPathExtension + ".jpg"))
        #expect(Self.files(under: out, endingWith: "").filter { $0.contains(".tmp-") }.isEmpty, "the failed attempt's temp file is gone")
    }

    @Test("the posters setting reads auto, off and a path, and refuses anything else")
    func setting() async throws {
        let config = try TemporaryDirectory("posters-config")
        defer { config.remove() }
        for (value, accepted) in [("auto", true), ("off", true), ("/usr/bin/ffmpeg", true), ("sometimes", false)] {
            let check = try ChildProcess("kling-batch", ["config", "--state-dir", config.path], environment: Processes.environment(["KLING_BATCH_POSTERS": value]))
            let status = await check.waitForExit()
            #expect((status == 0) == accepted, "posters: \(value): \(check.stderr)")
            if !accepted { #expect(check.stderr.contains("must be auto, off or the path of an ffmpeg program")) }
        }
    }
}
