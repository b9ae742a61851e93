import AsyncHTTPClient
import FalClient
import FalEmulator
import Foundation
import Logging

/// An in-process emulator on a free port plus a client pointed at it, for one test.
public struct EmulatorHarness: Sendable {
    public let emulator: FalEmulator
    public let baseURL: URL
    public let client: FalClient
    public let http: HTTPClient

    /// The key every harness client sends.
    public static let key = FalKey("test-key-0123456789", source: "test")!

    /// Starts an emulator with `configure` applied, runs `body`, and shuts both down.
    public static func run<T: Sendable>(
        configure: @Sendable (inout EmulatorConfiguration) -> Void = { _ in },
        timeouts: FalClient.Timeouts = .init(),
        _ body: @Sendable (EmulatorHarness) async throws -> T
    ) async throws -> T {
        var configuration = EmulatorConfiguration()
        configuration.runSeconds = 0.05
        configure(&configuration)
        var quiet = Logger(label: "test-emulator")
        quiet.logLevel = .warning
        let logger = quiet
        let emulator = FalEmulator(configuration: configuration, logger: logger)
        return try await emulator.withRunning { url in
            let http = FalClient.makeHTTPClient()
            let client = FalClient(
                http: http, endpoints: FalEndpoints(baseURL: url), key: key, logger: logger, timeouts: timeouts)
            do {
                let value = try await body(EmulatorHarness(emulator: emulator, baseURL: url, client: client, http: http))
                try await http.shutdown()
                return value
            } catch {
                try? await http.shutdown()
                throw error
            }
        }
    }

    /// Polls status until the request completes; the emulator's clock is real, so this waits on its events.
    public func waitUntilCompleted(_ handle: FalRequestHandle, timeout: Duration = .seconds(30)) async throws -> RequestStatus {
        let deadline = ContinuousClock.now + timeout
        while true {
            let status = try await client.status(handle)
            if case .completed = status.state { return status }
            guard ContinuousClock.now < deadline else { throw HarnessError("request \(handle.requestID) did not complete") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// A test precondition that did not hold.
public struct HarnessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
