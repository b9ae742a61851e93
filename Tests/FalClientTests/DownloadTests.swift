import AsyncHTTPClient
import Crypto
import FalClient
import FalEmulator
import Foundation
import KlingCore
import Logging
import Testing
import TestSupport

/// Finishes one request and returns its video output.
func finishedVideo(_ harness: EmulatorHarness, input: JSONValue = sampleInput) async throws -> VideoOutput {
    let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: input)
    _ = try await harness.waitUntilCompleted(receipt.handle)
    return try #require(VideoOutput(result: try await harness.client.result(receipt.handle)))
}

func sha256(of url: URL) throws -> String {
    SHA256.hash(data: try Data(contentsOf: url)).map { String(format: "%02x", $0) }.joined()
}

@Suite("Streaming downloads")
struct DownloadTests {
    @Test("a transfer cut twice in the middle is resumed with Range requests and ends byte-identical")
    func resumesCutTransfers() async throws {
        try await EmulatorHarness.run(configure: { $0.videoBytes = 3 << 20 }) { harness in
            let video = try await finishedVideo(harness)
            try await TemporaryDirectory.with { directory in
                let reference = directory.file("reference.mp4")
                let clean = try await harness.client.download(from: video.url, to: .init(reference.path), expectedBytes: video.fileSize)

                await harness.emulator.state.configure { $0.faults = [FaultRule(kind: .truncatedDownload, probability: 1, limit: 2)] }
                let destination = directory.file("cut.mp4")
                let report = try await harness.client.download(from: video.url, to: .init(destination.path), expectedBytes: video.fileSize)
                #expect(report.resumes == 2)
                #expect(report.bytes == 3 << 20)
                #expect(report.sha256 == clean.sha256)
                #expect(try sha256(of: destination) == clean.sha256)
                #expect(try MP4Inspector(file: destination).isPlayable)
                let counters = await harness.emulator.state.counters()
                #expect(counters.faults(.truncatedDownload) == 2)
                #expect(counters.rangeRequests == 2)
            }
        }
    }

    @Test("a .part file left by an earlier run is resumed, not downloaded again")
    func resumesLeftoverPart() async throws {
        try await EmulatorHarness.run(configure: { $0.videoBytes = 1 << 20 }) { harness in
            let video = try await finishedVideo(harness)
            try await TemporaryDirectory.with { directory in
                let reference = directory.file("reference.mp4")
                let clean = try await harness.client.download(from: video.url, to: .init(reference.path))
                let destination = directory.file("video.mp4")
                try Data(try Data(contentsOf: reference).prefix(300_000)).write(to: URL(fileURLWithPath: FalClient.partPath(for: .init(destination.path)).string))
                let report = try await harness.client.download(from: video.url, to: .init(destination.path), expectedBytes: video.fileSize)
                #expect(report.sha256 == clean.sha256)
                let counters = await harness.emulator.state.counters()
                #expect(counters.rangeRequests == 1)
                #expect(counters.videoBytesServed == (1 << 20) + (1 << 20) - 300_000)
            }
        }
    }

    @Test("a server that ignores Range makes the download start over, still correct")
    func serverIgnoresRange() async throws {
        try await EmulatorHarness.run(configure: { $0.videoBytes = 1 << 20; $0.ignoreRangeRequests = true }) { harness in
            let video = try await finishedVideo(harness)
            try await TemporaryDirectory.with { directory in
                let reference = directory.file("reference.mp4")
                let clean = try await harness.client.download(from: video.url, to: .init(reference.path))
                await harness.emulator.state.configure { $0.faults = [FaultRule(kind: .truncatedDownload, probability: 1, limit: 1)] }
                let destination = directory.file("video.mp4")
                let report = try await harness.client.download(from: video.url, to: .init(destination.path), expectedBytes: video.fileSize)
                #expect(report.resumes == 1)
                #expect(report.sha256 == clean.sha256)
                #expect(try sha256(of: destination) == clean.sha256)
            }
        }
    }

    @Test("a length other than the one fal promised is refused and nothing is renamed into place")
    func lengthMismatch() async throws {
        try await EmulatorHarness.run { harness in
            let video = try await finishedVideo(harness)
            try await TemporaryDirectory.with { directory in
                let destination = directory.file("video.mp4")
                let error = await #expect(throws: FalError.self) {
                    try await harness.client.download(from: video.url, to: .init(destination.path), expectedBytes: (video.fileSize ?? 0) + 1)
                }
                guard case .malformedResponse? = error?.kind else { Issue.record("expected malformed"); return }
                #expect(!FileManager.default.fileExists(atPath: destination.path))
            }
        }
    }

    @Test("an expired result file is gone for good")
    func expired() async throws {
        try await EmulatorHarness.run(configure: { $0.resultLifetimeSeconds = 0 }) { harness in
            let video = try await finishedVideo(harness)
            try await TemporaryDirectory.with { directory in
                let error = await #expect(throws: FalError.self) {
                    try await harness.client.download(from: video.url, to: .init(directory.file("v.mp4").path))
                }
                #expect(error?.kind == .notFound)
                #expect(error?.operation == .download)
                #expect(error?.disposition == .permanent)
            }
        }
    }

    @Test("too many cuts give up with a retryable error and keep the partial file")
    func givesUpAfterMaxResumes() async throws {
        try await EmulatorHarness.run(configure: { $0.videoBytes = 1 << 20 }) { harness in
            let video = try await finishedVideo(harness)
            await harness.emulator.state.configure { $0.faults = [FaultRule(kind: .truncatedDownload, probability: 1)] }
            try await TemporaryDirectory.with { directory in
                let destination = directory.file("video.mp4")
                let error = await #expect(throws: FalError.self) {
                    try await harness.client.download(from: video.url, to: .init(destination.path), maxResumes: 2)
                }
                #expect(error?.isRetryable == true)
                #expect(!FileManager.default.fileExists(atPath: destination.path))
                #expect(FileManager.default.fileExists(atPath: FalClient.partPath(for: .init(destination.path)).string))
            }
        }
    }

    /// Measured in a process of its own (an exit test): beside other tests in one process, their allocations
    /// would count as the download's. The emulator is a process of its own too, so the memory is the client's alone.
    @Test("a 40 MB video streams to disk while resident memory grows by less than 20 MB")
    func fortyMegabytesInBoundedMemory() async throws {
        let result = try await #require(processExitsWith: .success, observing: [\.standardErrorContent]) {
            let growth = try await Self.downloadFortyMegabytes()
            FileHandle.standardError.write(Data("resident memory grew by \(growth / 1024) KiB\n".utf8))
            if growth >= 20 << 20 { exit(1) }
        }
        let report = String(decoding: result.standardErrorContent, as: UTF8.self)
        #expect(report.contains("resident memory grew by"), "\(report)")
    }

    /// Downloads a 40 MB video from an emulator process; the largest growth of resident memory while it streams.
    static func downloadFortyMegabytes() async throws -> Int {
        let emulator = try ChildProcess("fal-emulator", ["--port", "0", "--run-seconds", "0", "--video-bytes", String(40 << 20)])
        defer { emulator.signal(SIGTERM) }
        let line = try await emulator.waitForLine(startingWith: "LISTENING ")
        guard let base = URL(string: String(line.dropFirst("LISTENING ".count))) else { throw HarnessError("no emulator URL in \(line)") }
        let http = FalClient.makeHTTPClient()
        let client = FalClient(http: http, endpoints: .init(baseURL: base), key: EmulatorHarness.key, logger: Logger(label: "test"))
        do {
            let growth = try await measureDownload(client)
            try await http.shutdown()
            return growth
        } catch {
            try? await http.shutdown()
            throw error
        }
    }

    /// Submits, waits, and downloads the video while sampling resident memory.
    static func measureDownload(_ client: FalClient) async throws -> Int {
        let receipt = try await client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput)
        var output: JSONValue?
        while output == nil {
            if case .completed = try await client.status(receipt.handle).state { output = try await client.result(receipt.handle) }
        }
        guard let video = output.flatMap(VideoOutput.init(result:)), video.fileSize == 40 << 20 else { throw HarnessError("no 40 MB video in \(String(describing: output))") }
        return try await TemporaryDirectory.with { directory in
            let before = ProcessMemory.residentBytes()
            let peak = PeakMemory()
            let sampler = Task.detached {
                while !Task.isCancelled {
                    await peak.record(ProcessMemory.residentBytes())
                    try? await Task.sleep(for: .milliseconds(5))
                }
            }
            let report = try await client.download(from: video.url, to: .init(directory.file("big.mp4").path), expectedBytes: video.fileSize)
            sampler.cancel()
            await peak.record(ProcessMemory.residentBytes())
            guard report.bytes == 40 << 20, try MP4Inspector(file: directory.file("big.mp4")).isPlayable else {
                throw HarnessError("the download is not the whole, playable video (\(report.bytes) bytes)")
            }
            return await peak.maximum - before
        }
    }
}

/// The largest value recorded, shared between the sampler and the test.
actor PeakMemory {
    var maximum = 0
    func record(_ value: Int) { maximum = max(maximum, value) }
}
