import AsyncHTTPClient
import FalEmulator
import Foundation
import KlingCore

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
        let http = HTTPClient.shared
        let response = try await http.execute(.init(url: url.absoluteString + "/_emulator/counters"), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 16 << 20)
        return try JSONDecoder().decode(EmulatorCounters.self, from: Data(body.readableBytesView))
    }

    /// Every request fal made, in the order they were submitted (`GET /_emulator/requests`).
    public func requests() async throws -> [RequestSummary] {
        let http = HTTPClient.shared
        let response = try await http.execute(.init(url: url.absoluteString + "/_emulator/requests"), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 64 << 20)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = Date(iso8601: text) else { throw HarnessError("not an ISO 8601 time: \(text)") }
            return date
        }
        return try decoder.decode([RequestSummary].self, from: Data(body.readableBytesView))
    }

    /// Sends the submit answers the emulator holds (`--hold-answers`); returns how many.
    @discardableResult
    public func releaseAnswers() async throws -> Int {
        try await post("release-answers")["released"]?.intValue.map { Int($0) } ?? 0
    }

    /// Sends the held submit answers from the calling thread, blocking it (through curl): for a thread of its own
    /// (`ChildProcess.onStderr`) that must not wait for the test's shared threads.
    public func releaseAnswersBlocking() {
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-sS", "--max-time", "10", "-X", "POST", url.absoluteString + "/_emulator/release-answers"]
        curl.standardOutput = FileHandle.nullDevice
        do {
            let status = try curl.runToEnd()
            if status != 0 { print("releasing the held answers: curl exited \(status)") }
        } catch {
            print("releasing the held answers: curl did not start: \(error)")
        }
    }

    /// Lets requests held IN_QUEUE (`--hold`) run.
    @discardableResult
    public func releaseRequests() async throws -> Int {
        try await post("release")["released"]?.intValue.map { Int($0) } ?? 0
    }

    /// Waits until the counters satisfy `condition` (asked every 50 ms: the emulator has no way to push them),
    /// or throws after `timeout` with the last counters seen.
    @discardableResult
    public func waitForCounters(timeout: Duration = .seconds(120), _ condition: (EmulatorCounters) -> Bool) async throws -> EmulatorCounters {
        let deadline = ContinuousClock.now + timeout
        while true {
            let counters = try await counters()
            if condition(counters) { return counters }
            guard ContinuousClock.now < deadline else { throw HarnessError("emulator counters never got there: \(counters)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Changes the emulator's knobs while it runs (`PUT /_emulator/config`).
    public func configure(_ change: (inout EmulatorConfiguration) -> Void) async throws {
        let http = HTTPClient.shared
        let current = try await http.execute(HTTPClientRequest(url: url.absoluteString + "/_emulator/config"), timeout: .seconds(10))
        var configuration = try JSONDecoder().decode(EmulatorConfiguration.self, from: Data(try await current.body.collect(upTo: 1 << 20).readableBytesView))
        change(&configuration)
        var request = HTTPClientRequest(url: url.absoluteString + "/_emulator/config")
        request.method = .PUT
        request.body = .bytes(Array(try JSONEncoder().encode(configuration)))
        _ = try await http.execute(request, timeout: .seconds(10)).body.collect(upTo: 1 << 20)
    }

    private func post(_ path: String) async throws -> JSONValue {
        var request = HTTPClientRequest(url: url.absoluteString + "/_emulator/" + path)
        request.method = .POST
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return try JSONValue.parse(Data(body.readableBytesView))
    }

    public func stop() async {
        process.signal(SIGTERM)
        await process.waitForExit()
    }

    /// A test that forgot `stop()` (or failed before it) must not leave its emulator running after the suite.
    deinit { if process.process.isRunning { process.signal(SIGKILL) } }
}
