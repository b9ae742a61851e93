import FalClient
import FalEmulator
import Foundation
import KlingCore
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

@Suite("The key's origins, and our own disk")
struct OriginAndDiskTests {
    @Test("an authenticated call to another origin is refused before anything is sent; a handle is confined to the queue origin")
    func foreignOrigin() async throws {
        let trap = try ListenerTrap()
        defer { trap.close() }
        try await EmulatorHarness.run { harness in
            let endpoint = FalEndpointID.klingO1ReferenceToVideo
            let foreign = FalRequestHandle(
                requestID: "r1", endpoint: endpoint, statusURL: URL(string: trap.url + "/x/status")!,
                responseURL: URL(string: trap.url + "/x")!, cancelURL: URL(string: trap.url + "/x/cancel")!)
            await #expect(throws: FalError.self) { _ = try await harness.client.status(foreign) }
            do {
                _ = try await harness.client.result(foreign)
            } catch let error as FalError {
                #expect(error.kind == .foreignOrigin("http://127.0.0.1:\(trap.port)") && error.disposition == .permanent)
                #expect(!error.description.contains("test-key-0123456789"))
            }
            #expect(trap.connectionCount == 0, "a request reached the other origin")

            let (confined, replaced) = foreign.confined(to: harness.baseURL)
            #expect(replaced.count == 3)
            #expect(confined.statusURL == FalRequestHandle(requestID: "r1", endpoint: endpoint, queueBase: harness.baseURL).statusURL)
            let own = FalRequestHandle(requestID: "r2", endpoint: endpoint, queueBase: harness.baseURL)
            #expect(own.confined(to: harness.baseURL).replaced.isEmpty)
            #expect(FalEndpoints.production.mayReceiveKey(URL(string: "https://rest.fal.ai/storage/upload/initiate")!))
            #expect(!FalEndpoints.production.mayReceiveKey(URL(string: "https://v3.fal.media/files/x.png")!))
        }
    }

    @Test("a download onto a full disk fails as LocalWriteError (ENOSPC), never as a network error, and keeps its hidden partial file for later",
          .enabled(if: Tmpfs.isAvailable, "needs root to mount a tmpfs"))
    func fullDisk() async throws {
        let folder = try TemporaryDirectory("download-full")
        defer { folder.remove() }
        let disk = try Tmpfs(at: folder.path + "/out", megabytes: 1)
        defer { disk.unmount() }
        try await EmulatorHarness.run(configure: { $0.videoBytes = 3_000_000 }) { harness in
            let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput)
            _ = try await harness.waitUntilCompleted(receipt.handle)
            let video = try #require(VideoOutput(result: try await harness.client.result(receipt.handle)))
            let destination = disk.path + "/a.mp4"
            do {
                _ = try await harness.client.download(from: video.url, to: .init(destination), expectedBytes: video.fileSize)
                Issue.record("a 3 MB video fit on a 1 MB disk")
            } catch let error as LocalWriteError {
                #expect(error.code == ENOSPC && error.isWaitable, "\(error)")
            }
            #expect(!FileManager.default.fileExists(atPath: destination), "a partial video is visible under its final name")
            #expect(FileManager.default.fileExists(atPath: FalClient.partPath(for: .init(destination)).string))
            try disk.resize(megabytes: 8)
            let report = try await harness.client.download(from: video.url, to: .init(destination), expectedBytes: video.fileSize)
            #expect(report.bytes == 3_000_000)
            #expect(try MP4Inspector(file: URL(fileURLWithPath: destination)).isPlayable)
        }
    }
}
