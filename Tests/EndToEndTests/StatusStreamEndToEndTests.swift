import FalEmulator
import Foundation
import KlingCore
import Testing
import TestSupport

/// Jobs at fal are followed on the status stream; a stream that is cut or silent falls back to polling, and no
/// fault of the stream ever makes a job be paid twice.
@Suite("Status stream end to end", .serialized, .timeLimit(.minutes(5)))
struct StatusStreamEndToEndTests {
    /// `run --once` of 6 jobs against an emulator with `faults`, with `settings` in a config file.
    func run(faults: [String], settings: String = "") async throws -> (EmulatorCounters, ChildProcess) {
        let folder = try TemporaryDirectory("stream-e2e")
        defer { folder.remove() }
        let jobs = folder.path + "/jobs"
        try FileManager.default.createDirectory(atPath: jobs + "/refs", withIntermediateDirectories: true)
        try SpecWriter.png(salt: "stream").write(to: URL(fileURLWithPath: jobs + "/refs/a.png"))
        try "takes: 6\nname: \"s-{take}\"\nprompt: \"@Image1 take {take}\"\nimage_urls: [refs/a.png]\nduration: 3\n"
            .write(toFile: jobs + "/streamed.yaml", atomically: true, encoding: .utf8)
        try settings.write(toFile: folder.path + "/config.yaml", atomically: true, encoding: .utf8)
        let emulator = try await EmulatorProcess(["--queue-seconds", "0.2", "--run-seconds", "0.5"] + faults.flatMap { ["--fault", $0] })
        let run = try Processes.runOnce(emulator, state: folder.path + "/state", out: folder.path + "/out", jobs: jobs + "/streamed.yaml",
                                        extra: ["--config", folder.path + "/config.yaml"])
        #expect(await run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        #expect(Processes.files(in: folder.path + "/out", suffix: ".mp4").count == 6)
        return (try await emulator.counters(), run)
    }

    @Test("every job is followed on its stream: no status polls at all, one stream per job, nothing paid twice")
    func streamed() async throws {
        let (counters, _) = try await run(faults: [])
        #expect(counters.statusPolls == 0, "\(counters)")
        #expect(counters.statusStreams == 6)
        #expect(counters.requestsCreated == 6 && counters.duplicateSubmissions == 0)
    }

    @Test("streams cut after their first event: the jobs finish by polling, the streams are reopened, nothing paid twice")
    func cut() async throws {
        let (counters, run) = try await run(faults: ["stream-cut=1"])
        #expect(counters.statusPolls > 0 && counters.statusStreams >= 6, "\(counters)")
        #expect(counters.requestsCreated == 6 && counters.duplicateSubmissions == 0)
        #expect(run.stderr.contains("status stream: the status stream ended before the request completed; polling until it reopens"))
    }

    @Test("silent streams: after stream_silence the jobs fall back to polling and finish, nothing paid twice")
    func silent() async throws {
        let (counters, run) = try await run(faults: ["stream-silent=1"], settings: "stream_silence: 300ms\n")
        #expect(counters.statusPolls > 0, "\(counters)")
        #expect(counters.requestsCreated == 6 && counters.duplicateSubmissions == 0)
        #expect(run.stderr.contains("status stream silent for 0.3 s; polling until it reopens"), "\(run.stderr.suffix(1500))")
    }

    @Test("status_stream: false polls only")
    func pollingOnly() async throws {
        let (counters, _) = try await run(faults: [], settings: "status_stream: false\n")
        #expect(counters.statusStreams == 0 && counters.statusPolls >= 6)
        #expect(counters.duplicateSubmissions == 0)
    }
}
