import AsyncHTTPClient
import Foundation
import KlingCore
import NIOCore
import NIOHTTP1

/// A headless Chromium driven over the W3C WebDriver protocol (chromedriver's HTTP API), for tests that need a real
/// browser: a playable `<video>`, a page that changes without a reload, a button that posts with a cookie.
public final class WebDriver: Sendable {
    /// Where Debian puts them (`apt-get install chromium chromium-driver`).
    public static let driverPath = "/usr/bin/chromedriver"
    public static let browserPath = "/usr/bin/chromium"

    /// Whether both are installed; CI installs them, and a suite that needs them fails loudly without them there.
    public static var isInstalled: Bool {
        FileManager.default.isExecutableFile(atPath: driverPath) && FileManager.default.isExecutableFile(atPath: browserPath)
    }

    private let driver: ChildProcess
    private let base: String
    private let session: String

    /// Starts chromedriver on a free port and opens one headless session.
    public init() async throws {
        let trap = try ListenerTrap()
        let port = trap.port
        trap.close()
        driver = try ChildProcess(at: URL(fileURLWithPath: Self.driverPath), ["--port=\(port)", "--allowed-ips=127.0.0.1"])
        base = "http://127.0.0.1:\(port)"
        // "Starting ChromeDriver …", then "ChromeDriver was started successfully on port N." once it listens.
        while let line = await driver.nextLine(), !line.contains("started successfully") {}
        let capabilities: JSONValue = ["capabilities": ["alwaysMatch": [
            "browserName": "chrome",
            "goog:chromeOptions": [
                "binary": .string(Self.browserPath),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required", "--mute-audio"],
            ],
            "timeouts": ["script": 45_000, "pageLoad": 60_000],
        ]]]
        let answer = try await Self.call(base, .POST, "/session", capabilities)
        guard let id = answer["sessionId"]?.stringValue else { throw HarnessError("chromedriver opened no session: \(answer.canonicalString().prefix(500))") }
        session = id
    }

    /// Opens `url` and waits for the page to load.
    public func open(_ url: String) async throws {
        _ = try await Self.call(base, .POST, "/session/\(session)/url", ["url": .string(url)])
    }

    /// Runs `script` (a function body; `arguments[…]` are `arguments`) in the page and returns its value.
    @discardableResult
    public func run(_ script: String, _ arguments: [JSONValue] = []) async throws -> JSONValue {
        try await Self.call(base, .POST, "/session/\(session)/execute/sync", ["script": .string(script), "args": .array(arguments)])
    }

    /// Waits in the page until `condition` (a JavaScript expression) is true, re-checking on every DOM change and
    /// media event rather than on a timer; returns what `result` (an expression) is then. A slow machine may take
    /// longer than one script's timeout: the wait starts again until the test's time limit cancels it.
    /// With `within`, it gives up after that long and throws, saying what `explain` (an expression) is then: the
    /// page's state, for a failure that says why rather than a time limit that says nothing.
    @discardableResult
    public func wait(until condition: String, then result: String = "true", within limit: Duration? = nil, explain: String? = nil) async throws -> JSONValue {
        let deadline = limit.map { ContinuousClock.now + $0 }
        while true {
            do {
                return try await waitOnce(until: condition, then: result)
            } catch let error as WebDriverError where error.code == "script timeout" {
                try Task.checkCancellation()
                if let deadline, let limit, ContinuousClock.now >= deadline {
                    let state = try? await run("return " + (explain ?? "document.body.innerHTML.slice(0, 4000)"))
                    throw HarnessError("waited \(limit) for \(condition.prefix(200)); the page then: \(state ?? .null)")
                }
                print("WebDriver: still waiting for \(condition.prefix(120)) after a script timeout; waiting again")
            }
        }
    }

    /// One in-page wait, up to the session's script timeout.
    private func waitOnce(until condition: String, then result: String) async throws -> JSONValue {
        let script = """
            const done = arguments[arguments.length - 1];
            const check = () => { try { return (\(condition)); } catch (e) { return false; } };
            if (check()) { done(\(result)); return; }
            const finish = () => { if (check()) { observer.disconnect(); events.forEach(e => document.removeEventListener(e, finish, true)); done(\(result)); } };
            const observer = new MutationObserver(finish);
            observer.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
            const events = ["loadedmetadata", "loadeddata", "canplay", "load"];
            events.forEach(e => document.addEventListener(e, finish, true));
            """
        return try await Self.call(base, .POST, "/session/\(session)/execute/async", ["script": .string(script), "args": []])
    }

    /// Saves a PNG of the window to `path` and says where (in the test's output).
    public func screenshot(to path: String) async throws {
        let encoded = try await Self.call(base, .GET, "/session/\(session)/screenshot", nil)
        guard let text = encoded.stringValue, let data = Data(base64Encoded: text) else { throw HarnessError("no screenshot") }
        try data.write(to: URL(fileURLWithPath: path))
        print("screenshot: \(path)")
        // KLING_BATCH_SCREENSHOTS=DIR keeps a copy (the test's folder is removed), e.g. for docs/.
        if let keep = ProcessInfo.processInfo.environment["KLING_BATCH_SCREENSHOTS"] {
            try? data.write(to: URL(fileURLWithPath: keep).appendingPathComponent((path as NSString).lastPathComponent))
        }
    }

    /// Closes the session and stops chromedriver (and its browser).
    public func quit() async {
        _ = try? await Self.call(base, .DELETE, "/session/\(session)", nil)
        // chromedriver does not stop on SIGTERM while it serves; its browser ended with the session.
        driver.signal(SIGKILL)
        _ = await driver.waitForExit()
    }

    /// One WebDriver command; its `value`, or an error with chromedriver's message.
    private static func call(_ base: String, _ method: HTTPMethod, _ path: String, _ body: JSONValue?) async throws -> JSONValue {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "Content-Type", value: "application/json")
        if let body { request.body = .bytes(ByteBuffer(data: body.canonicalData())) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(180))
        let data = Data(try await response.body.collect(upTo: 16 << 20).readableBytesView)
        let answer = (try? JSONValue.parse(data)) ?? .null
        if response.status.code >= 400 {
            throw WebDriverError(
                code: answer["value"]?["error"]?.stringValue ?? "",
                description: "WebDriver \(method.rawValue) \(path): \(answer["value"]?["message"]?.stringValue ?? String(decoding: data.prefix(500), as: UTF8.self))")
        }
        return answer["value"] ?? .null
    }
}

/// A WebDriver command that failed: `code` is the protocol's error code ("script timeout", "no such element", …),
/// so that a caller can tell a slow page from a broken one.
public struct WebDriverError: Error, CustomStringConvertible {
    public let code: String
    public let description: String
}
