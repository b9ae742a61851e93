import AsyncHTTPClient
import CoreMetrics
import Foundation
import KlingCore
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOPosix
import Synchronization

/// Shared, replaceable storage for the key, so copies of a client see a reloaded key.
final class KeyBox: Sendable {
    let value: Mutex<FalKey>
    init(_ key: FalKey) { value = Mutex(key) }
}

/// A client for fal's queue, storage and platform APIs.
///
/// Every method either returns a decoded answer or throws a `FalError` (or `CancellationError`); callers
/// decide what to do from `FalError.disposition`. Calls are single attempts: retrying is the runner's
/// policy, not the client's, because only the runner knows whether a retry could pay twice.
public struct FalClient: Sendable {
    public let endpoints: FalEndpoints
    /// The key in use; `replaceKey` swaps it for every copy of this client (SIGHUP after the key file changed).
    public var key: FalKey { keyBox.value.withLock { $0 } }
    private let keyBox: KeyBox
    public let http: HTTPClient
    public var logger: Logger
    public var timeouts: Timeouts
    /// Whether fal has been answering lately (see `FalContact`).
    public let contact = FalContact()

    /// How long each kind of call may take before it counts as failed.
    public struct Timeouts: Sendable {
        /// Status, result, cancel and listing calls, until the whole answer is in.
        public var call: Duration = .seconds(30)
        /// A submit, until fal's answer is in. Past it the outcome is unknown and must be reconciled.
        public var submit: Duration = .seconds(60)
        /// Each upload step.
        public var upload: Duration = .seconds(120)
        /// A download, until the response head is in; the body is then bounded by the HTTP client's idle read timeout.
        public var downloadHead: Duration = .seconds(30)
        /// How long a status stream may stay open after its COMPLETED event (it is read to its end, so its connection
        /// is reused) before it is closed from our side.
        public var streamDrain: Duration = .seconds(2)

        public init() {}
    }

    /// The largest JSON answer accepted: listings with payloads can hold data URIs, so this is generous.
    static let maxJSONBytes = 64 << 20

    public init(http: HTTPClient, endpoints: FalEndpoints, key: FalKey, logger: Logger, timeouts: Timeouts = .init()) {
        self.http = http
        self.endpoints = endpoints
        keyBox = KeyBox(key)
        self.logger = logger
        self.timeouts = timeouts
    }

    /// fal's latency per call kind, for `/metrics` (a histogram under Prometheus; nothing without a backend).
    static func recordLatency(_ operation: FalOperation, since started: ContinuousClock.Instant) {
        let elapsed = (ContinuousClock.now - started).components
        let nanoseconds = elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000
        CoreMetrics.Timer(label: "kling_batch_fal_request_duration_seconds", dimensions: [("operation", operation.rawValue)]).recordNanoseconds(nanoseconds)
    }

    /// Uses `key` from the next call on.
    public func replaceKey(_ key: FalKey) { keyBox.value.withLock { $0 = key } }

    /// An HTTP client configured for fal: bounded connect and idle-read timeouts, and no automatic redirects,
    /// so the key is never forwarded to another host (downloads follow redirects themselves, without the key).
    public static func makeHTTPClient(eventLoopGroup: (any EventLoopGroup)? = nil) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(60))
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool.idleTimeout = .seconds(30)
        // fal allows up to 40 requests at once per account: each may be mid-submit (or, over HTTP/1, mid-poll) at
        // the same moment, and AsyncHTTPClient's default of 8 connections per host would queue them behind each other.
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        configuration.decompression = .disabled
        if let eventLoopGroup {
            return HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: configuration)
        }
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    // MARK: - Plumbing

    /// Sends one request and collects its answer; transport failures become `FalError.transport`.
    func send(
        _ method: HTTPMethod, _ url: URL, body: Data? = nil, contentType: String? = "application/json",
        extraHeaders: [(String, String)] = [], operation: FalOperation, timeout: Duration, authorized: Bool = true,
        maxBytes: Int = FalClient.maxJSONBytes
    ) async throws -> FalHTTPAnswer {
        if authorized && !endpoints.mayReceiveKey(url) {
            throw FalError(kind: .foreignOrigin(FalOrigin.of(url) ?? url.absoluteString), operation: operation, url: url.absoluteString)
        }
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = method
        if authorized { request.headers.add(name: "Authorization", value: key.authorizationHeader) }
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: FalClient.userAgent)
        for (name, value) in extraHeaders { request.headers.add(name: name, value: value) }
        if let body {
            if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
            request.body = .bytes(ByteBuffer(data: body))
        }
        let started = ContinuousClock.now
        defer { Self.recordLatency(operation, since: started) }
        do {
            let response = try await http.execute(request, timeout: .init(timeout))
            var buffer = try await response.body.collect(upTo: maxBytes)
            let data = buffer.readData(length: buffer.readableBytes) ?? Data()
            var headers: [String: String] = [:]
            for header in response.headers { headers[header.name.lowercased()] = header.value }
            if response.status.code >= 500 { contact.missed() } else { contact.reached() }
            return FalHTTPAnswer(status: Int(response.status.code), headers: headers, body: data)
        } catch let error as CancellationError {
            throw error
        } catch is NIOTooManyBytesError {
            throw FalError(kind: .malformedResponse("answer larger than \(maxBytes) bytes"), operation: operation, url: url.absoluteString)
        } catch {
            if Task.isCancelled { throw CancellationError() }
            contact.missed()
            throw FalError(kind: .transport(Self.describeTransport(error)), operation: operation, url: url.absoluteString)
        }
    }

    /// Sends a JSON call and returns its parsed body, throwing the classified error for non-2xx answers.
    func sendJSON(
        _ method: HTTPMethod, _ url: URL, body: JSONValue? = nil, extraHeaders: [(String, String)] = [],
        operation: FalOperation, timeout: Duration? = nil
    ) async throws -> JSONValue {
        let answer = try await send(
            method, url, body: body?.canonicalData(), extraHeaders: extraHeaders, operation: operation,
            timeout: timeout ?? timeouts.call
        )
        if let error = FalResponseClassifier.error(for: answer, operation: operation, url: url.absoluteString) {
            throw error
        }
        return try parseJSON(answer, operation: operation, url: url)
    }

    func parseJSON(_ answer: FalHTTPAnswer, operation: FalOperation, url: URL) throws -> JSONValue {
        do {
            return try JSONValue.parse(answer.body)
        } catch {
            throw malformed("\(error)", answer, operation: operation, url: url)
        }
    }

    private func malformed(_ reason: String, _ answer: FalHTTPAnswer, operation: FalOperation, url: URL) -> FalError {
        FalError(
            kind: .malformedResponse(reason), operation: operation, url: url.absoluteString,
            httpStatus: answer.status, falRequestID: answer.header("x-fal-request-id"))
    }

    /// A short, key-free description of a transport error.
    static func describeTransport(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded: return "timed out"
            case .connectTimeout: return "connect timed out"
            case .readTimeout: return "read timed out"
            case .remoteConnectionClosed: return "the server closed the connection"
            default: return error.description
            }
        }
        return String(describing: error)
    }

    /// Whether `error` means no connection to the server was ever open, so no byte of a request can have reached it:
    /// refused, unreachable, unresolvable, or timed out while connecting.
    static func neverConnected(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError {
            return [.connectTimeout, .socksHandshakeTimeout, .httpProxyHandshakeTimeout, .tlsHandshakeTimeout].contains(error)
        }
        if error is NIOConnectionError { return true }
        if let error = error as? ChannelError, case .connectTimeout = error { return true }
        if let error = error as? IOError { return [ECONNREFUSED, ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL].contains(error.errnoCode) }
        return false
    }

    static let userAgent = "kling-batch/\(KlingBatchVersion.current)"
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
