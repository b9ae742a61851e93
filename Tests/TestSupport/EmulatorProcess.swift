import AsyncHTTPClient
import FalEmulator
import Foundation

/// The `fal-emulator` executable running as its own process, with its admin endpoint at hand.
public final class EmulatorProcess: Sendable {
    public let process: ChildProcess
    public let url: URL

    /// Starts `fal-emulator --port 0` with `arguments` and waits for its LISTENING line.
    public init(_ arguments: [String] = []) async throws {
        process = try ChildProcess("fal-emulator", ["--port", "0"] + arguments)
        let line = try await process.waitForLine(startingWith: "LISTENING ")
        guard let url = URL(string: String(line.dropFirst("LISTENING ".count))) else { throw HarnessError("bad LISTENING line: \(line)") }
        self.url = url
    }

    /// The emulator's counters, from `GET /_emulator/counters`.
    public func counters() async throws -> EmulatorCounters {
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }
        let response = try await http.execute(.init(url: url.absoluteString + "/_emulator/counters"), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 16 << 20)
        try await http.shutdown()
        return try JSONDecoder().decode(EmulatorCounters.self, from: Data(body.readableBytesView))
    }

    public func stop() async {
        process.signal(SIGTERM)
        await process.waitForExit()
    }
}
