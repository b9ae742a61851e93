import Crypto
import Foundation
import Hummingbird
import KlingCore
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A notification receiver for tests: a Hummingbird server on a free loopback port that keeps every POST and
/// answers with the statuses it is given, in order (then 200), so retries can be scripted.
public final class WebhookReceiver: Sendable {
    /// One request as it arrived.
    public struct Received: Sendable {
        public var headers: [String: String]
        public var body: [UInt8]
        public var status: Int

        public var json: JSONValue { (try? JSONValue.parse(Data(body))) ?? .null }
        public var eventID: String? { headers["x-kling-batch-event-id"] }
        public var type: String? { json["type"]?.stringValue }

        /// Whether `X-Kling-Batch-Signature` is the HMAC-SHA256 of the raw body with `secret`.
        public func signatureVerifies(secret: String) -> Bool {
            let expected = "sha256=" + HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8))).hexString
            return headers["x-kling-batch-signature"] == expected
        }
    }

    /// Kept under a lock, not in an actor: the answer is given on the server's own thread, so a test process whose
    /// cooperative pool is starved (in-process runners doing synchronous SQLite work) still answers within the
    /// sender's timeout, and a delivery is never retried because the test was slow.
    private final class Log: Sendable {
        private struct State {
            var received: [Received] = []
            var script: [Int]
            var waiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
        }

        private let state: Mutex<State>

        init(script: [Int]) { state = Mutex(State(script: script)) }

        var received: [Received] { state.withLock { $0.received } }

        func answer(headers: [String: String], body: [UInt8]) -> Int {
            let (status, ready) = state.withLock { state -> (Int, [CheckedContinuation<Void, Never>]) in
                let status = state.script.isEmpty ? 200 : state.script.removeFirst()
                state.received.append(Received(headers: headers, body: body, status: status))
                let count = state.received.count
                let ready = state.waiters.filter { $0.count <= count }.map(\.continuation)
                state.waiters.removeAll { $0.count <= count }
                return (status, ready)
            }
            ready.forEach { $0.resume() }
            return status
        }

        func wait(for count: Int) async {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state -> Bool in
                    if state.received.count >= count { return true }
                    state.waiters.append((count, continuation))
                    return false
                }
                if now { continuation.resume() }
            }
        }
    }

    private let log: Log
    public let url: URL
    private let group: ServiceGroup
    private let task: Task<Void, Error>

    /// Starts listening; `statuses` are the answers to the first requests, in order.
    public init(statuses: [Int] = []) async throws {
        let log = Log(script: statuses)
        self.log = log
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
            let buffer = try await request.body.collect(upTo: 1 << 20)
            let status = log.answer(headers: headers, body: Array(buffer.readableBytesView))
            return Response(status: .init(code: status))
        }
        let (listening, continuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "webhook-receiver")
        logger.logLevel = .error
        let application = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [application], gracefulShutdownSignals: [], logger: logger))
        self.group = group
        task = Task { try await group.run() }
        var iterator = listening.makeAsyncIterator()
        guard let port = await iterator.next() else { throw HarnessError("the webhook receiver did not start") }
        url = URL(string: "http://127.0.0.1:\(port)/hook")!
    }

    /// Everything received so far.
    public var received: [Received] { get async { log.received } }

    /// Waits until `count` requests have arrived (the test's time limit bounds it).
    public func wait(for count: Int) async { await log.wait(for: count) }

    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}
