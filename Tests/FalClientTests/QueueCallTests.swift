import FalClient
import FalEmulator
import Foundation
import KlingCore
import Testing
import TestSupport

/// A valid model input with one element and a 9:16 frame.
let sampleInput: JSONValue = [
    "prompt": "A lighthouse keeper @Element1 walks through the rain",
    "elements": [["frontal_image_url": "https://example.com/keeper.png", "reference_image_urls": ["https://example.com/keeper-side.png"]]],
    "duration": "5",
    "aspect_ratio": "9:16",
]

func input(_ prompt: String) -> JSONValue {
    ["prompt": .string(prompt), "duration": "5", "aspect_ratio": "16:9"]
}

@Suite("Queue calls against the emulator")
struct QueueCallTests {
    @Test("submit, status, result and download a video end to end")
    func submitToDownload() async throws {
        try await EmulatorHarness.run { harness in
            let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput)
            #expect(!receipt.handle.requestID.isEmpty)
            #expect(receipt.queuePosition == 0)
            // Request URLs use owner/alias only, never the subpath.
            #expect(receipt.handle.statusURL.path == "/fal-ai/kling-video/requests/\(receipt.handle.requestID)/status")

            let final = try await harness.waitUntilCompleted(receipt.handle)
            guard case .completed(let error, _) = final.state else { Issue.record("not completed"); return }
            #expect(error == nil)
            #expect(final.logs.contains { $0.message == "Video ready" })
            #expect(final.metrics?["inference_time"]?.doubleValue != nil)

            let output = try await harness.client.result(receipt.handle)
            let video = try #require(VideoOutput(result: output))
            #expect(video.contentType == "video/mp4")

            try await TemporaryDirectory.with { directory in
                let destination = directory.file("out.mp4")
                let report = try await harness.client.download(
                    from: video.url, to: .init(destination.path), expectedBytes: video.fileSize)
                #expect(report.bytes == video.fileSize)
                #expect(report.resumes == 0)
                #expect(report.sha256.count == 64)
                #expect(!FileManager.default.fileExists(atPath: FalClient.partPath(for: .init(destination.path)).string))
                let mp4 = try MP4Inspector(file: destination)
                #expect(mp4.isPlayable)
                #expect(mp4.dimensions?.width == 180 && mp4.dimensions?.height == 320)  // 9:16
            }
            let counters = await harness.emulator.state.counters()
            #expect(counters.requestsCreated == 1)
            #expect(counters.resultFetches == 1)
            #expect(counters.videoDownloads == 1)
        }
    }

    @Test("queue_position reflects the requests ahead when runners are busy")
    func queuePositions() async throws {
        try await EmulatorHarness.run(configure: { $0.runnerCapacity = 1; $0.runSeconds = 3600 }) { harness in
            let first = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: input("first"))
            let second = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: input("second"))
            let third = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: input("third"))
            #expect(second.queuePosition == 0)
            #expect(third.queuePosition == 1)
            #expect(try await harness.client.status(first.handle).state == .inProgress)
            #expect(try await harness.client.status(second.handle).state == .inQueue(position: 0))
            #expect(try await harness.client.status(third.handle).state == .inQueue(position: 1))
            // Cancelling the running one frees the runner for the next in line.
            #expect(try await harness.client.cancel(first.handle) == .requested)
            #expect(try await harness.client.status(second.handle).state == .inProgress)
            #expect(try await harness.client.status(third.handle).state == .inQueue(position: 0))
            let counters = await harness.emulator.state.counters()
            #expect(counters.maxRunningRequests == 1)
            #expect(counters.maxActiveRequests == 3)
        }
    }

    @Test("status carries logs while IN_PROGRESS")
    func logsWhileRunning() async throws {
        try await EmulatorHarness.run(configure: { $0.runSeconds = 3600 }) { harness in
            let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput)
            let status = try await harness.client.status(receipt.handle)
            #expect(status.state == .inProgress)
            #expect(status.logs.first?.message.hasPrefix("Starting Kling O1") == true)
            let withoutLogs = try await harness.client.status(receipt.handle, logs: false)
            #expect(withoutLogs.logs.isEmpty)
        }
    }

    @Test("cancel a queued request, then cancel again once it is over")
    func cancelQueued() async throws {
        try await EmulatorHarness.run(configure: { $0.holdRequests = true }) { harness in
            let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput)
            #expect(try await harness.client.status(receipt.handle).state == .inQueue(position: 0))
            #expect(try await harness.client.cancel(receipt.handle) == .requested)
            let status = try await harness.client.status(receipt.handle)
            #expect(status.state == .completed(error: "Request was cancelled", errorType: "client_cancelled"))
            #expect(try await harness.client.cancel(receipt.handle) == .alreadyCompleted)
            let error = await #expect(throws: FalError.self) { try await harness.client.result(receipt.handle) }
            #expect(error?.httpStatus == 499)
            #expect(error?.errorType == "client_cancelled")
            #expect(error?.isRetryable == false)
            let counters = await harness.emulator.state.counters()
            #expect(counters.cancelsApplied == 1)
            #expect(counters.cancelCalls == 2)
        }
    }

    @Test("held requests run once released")
    func holdAndRelease() async throws {
        try await EmulatorHarness.run(configure: { $0.holdRequests = true }) { harness in
            let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput)
            #expect(try await harness.client.status(receipt.handle).state == .inQueue(position: 0))
            #expect(await harness.emulator.state.releaseHeldRequests() == 1)
            _ = try await harness.waitUntilCompleted(receipt.handle)
        }
    }

    @Test("a handle rebuilt from the request id reaches the same request")
    func rebuiltHandle() async throws {
        try await EmulatorHarness.run { harness in
            let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput)
            let rebuilt = FalRequestHandle(
                requestID: receipt.handle.requestID, endpoint: .klingO1ReferenceToVideo, queueBase: harness.baseURL)
            #expect(rebuilt == receipt.handle)
        }
    }

    @Test("submit sends fal's optional headers and webhook without breaking the call")
    func submitOptions() async throws {
        try await EmulatorHarness.run { harness in
            let options = SubmitOptions(
                webhookURL: URL(string: "https://hooks.example.com/fal")!, startTimeout: .seconds(600), priority: .low,
                outputLifetime: .seconds(86_400))
            let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput, options: options)
            let seen = await harness.emulator.state.lastSubmitOptions
            #expect(seen["fal_webhook"] == "https://hooks.example.com/fal")
            #expect(seen["X-Fal-Request-Timeout"] == "600")
            #expect(seen["X-Fal-Queue-Priority"] == "low")
            let lifecycle = try JSONValue.parse(Data((seen["X-Fal-Object-Lifecycle-Preference"] ?? "").utf8))
            #expect(lifecycle["expiration_duration_seconds"] == .int(86_400))
            _ = try await harness.waitUntilCompleted(receipt.handle)
            #expect(await harness.emulator.state.counters().requestsCreated == 1, "the options do not break the call")
        }
    }
}
