import AsyncHTTPClient
import FalClient
import FalEmulator
import Foundation
import KlingCore
import NIOCore
import Testing
import TestSupport

@Suite("The emulator over HTTP")
struct LiveEmulatorTests {
    @Test("admin endpoints read counters and change knobs at run time")
    func admin() async throws {
        try await EmulatorHarness.run { harness in
            let base = harness.baseURL.absoluteString
            var put = HTTPClientRequest(url: base + "/_emulator/config")
            put.method = .PUT
            var configuration = EmulatorConfiguration()
            configuration.holdRequests = true
            configuration.runSeconds = 0
            put.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(configuration)))
            #expect(try await harness.http.execute(put, timeout: .seconds(60)).status == .ok)
            #expect(await harness.emulator.state.configuration.holdRequests)

            let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: ["prompt": "held"])
            var release = HTTPClientRequest(url: base + "/_emulator/release")
            release.method = .POST
            let released = try await harness.http.execute(release, timeout: .seconds(60)).body.collect(upTo: 1 << 16)
            #expect(try JSONValue.parse(Data(released.readableBytesView))["released"] == 1)
            _ = try await harness.waitUntilCompleted(receipt.handle)

            let countersBody = try await harness.http.execute(.init(url: base + "/_emulator/counters"), timeout: .seconds(60)).body.collect(upTo: 1 << 20)
            let counters = try JSONDecoder().decode(EmulatorCounters.self, from: Data(countersBody.readableBytesView))
            #expect(counters.requestsCreated == 1)
            #expect(counters.statusPolls >= 1)

            var bad = HTTPClientRequest(url: base + "/_emulator/config")
            bad.method = .PUT
            bad.body = .bytes(ByteBuffer(string: "{not json"))
            #expect(try await harness.http.execute(bad, timeout: .seconds(60)).status == .badRequest)
            #expect(try await harness.http.execute(.init(url: base + "/nowhere"), timeout: .seconds(60)).status == .notFound)
        }
    }

    @Test("the status stream sends events until COMPLETED")
    func statusStream() async throws {
        // Held in the queue until the stream has said IN_QUEUE, then released: the test follows the stream's events
        // instead of racing a short run time on a busy machine.
        try await EmulatorHarness.run(configure: { $0.runSeconds = 1; $0.streamIntervalSeconds = 0.05; $0.holdRequests = true }) { harness in
            let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: ["prompt": "streamed"])
            var request = HTTPClientRequest(url: receipt.handle.statusURL.absoluteString + "/stream")
            request.headers.add(name: "Authorization", value: "Key any")
            let response = try await harness.http.execute(request, timeout: .seconds(30))
            #expect(response.headers.first(name: "content-type") == "text/event-stream")
            var text = ""
            var released = false
            for try await chunk in response.body {
                text += String(buffer: chunk)
                if !released && text.contains("IN_QUEUE") {
                    released = true
                    var release = HTTPClientRequest(url: harness.baseURL.absoluteString + "/_emulator/release")
                    release.method = .POST
                    _ = try await harness.http.execute(release, timeout: .seconds(5))
                }
            }
            // Keep-alive comment lines (":") may come between events; the parser the runner uses skips them.
            var parser = SSEParser()
            let statuses = try parser.feed(Array(text.utf8)).map { try JSONValue.parse($0.data)["status"]?.stringValue }
            #expect(text.components(separatedBy: "\n").allSatisfy { $0.isEmpty || $0.hasPrefix("data: ") || $0 == ":" })
            #expect(statuses.first == "IN_QUEUE")
            #expect(statuses.last == "COMPLETED")
            #expect(statuses.contains("IN_PROGRESS"))
            #expect(await harness.emulator.state.counters().statusStreams == 1)
        }
    }

    @Test("the standalone executable answers a plain curl session as the protocol page says")
    func curlSession() async throws {
        let emulator = try ChildProcess("fal-emulator", ["--port", "0", "--run-seconds", "0"])
        defer { emulator.signal(SIGTERM) }
        let listening = try await emulator.waitForLine(startingWith: "LISTENING ")
        let base = String(listening.dropFirst("LISTENING ".count))
        #expect(base.hasPrefix("http://127.0.0.1:"))

        let submitted = try JSONValue.parse(try curl([
            "-X", "POST", "-H", "Authorization: Key curl-key", "-H", "Content-Type: application/json",
            "-d", #"{"prompt":"a curl test","aspect_ratio":"1:1","duration":"3"}"#,
            base + "/fal-ai/kling-video/o1/reference-to-video",
        ]))
        let statusURL = try #require(submitted["status_url"]?.stringValue)
        let responseURL = try #require(submitted["response_url"]?.stringValue)
        var status = JSONValue.null
        for _ in 0..<100 {
            status = try JSONValue.parse(try curl(["-H", "Authorization: Key curl-key", statusURL + "?logs=1"]))
            if status["status"] == "COMPLETED" { break }
        }
        #expect(status["status"] == "COMPLETED")
        let result = try JSONValue.parse(try curl(["-H", "Authorization: Key curl-key", responseURL]))
        let videoURL = try #require(result["video"]?["url"]?.stringValue)
        try await TemporaryDirectory.with { directory in
            let file = directory.file("curl.mp4")
            _ = try curl(["-o", file.path, videoURL])
            let mp4 = try MP4Inspector(file: file)
            #expect(mp4.isPlayable)
            #expect(mp4.dimensions?.width == 240 && mp4.dimensions?.height == 240)
            #expect(result["video"]?["file_size"]?.intValue == Int64(try Data(contentsOf: file).count))
        }
        let unauthorized = try curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-d", "{}", base + "/fal-ai/kling-video/o1/reference-to-video"])
        #expect(unauthorized == "401")
        emulator.signal(SIGTERM)
        #expect(await emulator.waitForExit() == 0)
    }

    /// Runs curl and returns its stdout; fails the test when curl fails.
    func curl(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-sS", "--max-time", "10"] + arguments
        let out = Pipe()
        process.standardOutput = out
        let exit = try ProcessExit(running: process)
        let data = out.fileHandleForReading.readDataToEndOfFile()
        exit.waitBlocking()
        guard process.terminationStatus == 0 else { throw HarnessError("curl \(arguments) exited \(process.terminationStatus)") }
        return String(decoding: data, as: UTF8.self)
    }
}
