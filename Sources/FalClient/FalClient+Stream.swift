import AsyncHTTPClient
import Foundation
import KlingCore
import NIOCore
import NIOHTTP1
import Synchronization

extension FalClient {
    /// A client for status streams only: one long-lived connection per job at fal would otherwise take the pool's
    /// connections from submits, results and downloads. It lives as long as the process.
    static let streamHTTP: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        // No read timeout: a stream is quiet while a job runs; the runner decides how much silence it accepts.
        configuration.timeout = .init(connect: .seconds(10))
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool.idleTimeout = .seconds(30)
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 256
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// Why a stream ended before its request completed.
    public struct StreamEnded: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// fal's status stream (`…/status/stream`): each status as fal sends it (one per change), finishing after
    /// COMPLETED. It throws `StreamEnded` when the stream ends before that, the classified `FalError` when fal
    /// refuses it, and a transport `FalError` when the connection fails. Cancelling the consumer closes it.
    public func statusStream(_ handle: FalRequestHandle, logs: Bool = true) -> AsyncThrowingStream<RequestStatus, any Error> {
        var components = URLComponents(url: handle.statusURL.appendingPathComponent("stream"), resolvingAgainstBaseURL: false)!
        if logs { components.queryItems = (components.queryItems ?? []) + [URLQueryItem(name: "logs", value: "1")] }
        let url = components.url!
        let client = self
        let drain = timeouts.streamDrain
        return AsyncThrowingStream { continuation in
            // Once COMPLETED is handed over the consumer is done, but the reader goes on to the stream's end (fal
            // closes it then), so its connection goes back to the pool for the next stream instead of being closed.
            let drainer = Drainer()
            let task = Task {
                do {
                    try await client.readStream(url) { status in
                        continuation.yield(status)
                        guard case .completed = status.state else { return }
                        // Before `finish`, which runs the termination handler at once: the reader must go on draining.
                        drainer.state.withLock { $0.completed = true }
                        continuation.finish()
                        // A server that keeps the stream open after COMPLETED gets `streamDrain`, then the connection is
                        // closed. The reader is looked up after the wait: it may not have been recorded yet now.
                        let watchdog = Task {
                            guard (try? await Task.sleep(for: drain)) != nil else { return }
                            drainer.state.withLock { $0.reader }?.cancel()
                        }
                        drainer.state.withLock { $0.watchdog = watchdog }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
                // The stream ended (by itself, mostly): its watchdog has nothing left to do.
                drainer.state.withLock { $0.watchdog }?.cancel()
            }
            drainer.state.withLock { $0.reader = task }
            continuation.onTermination = { _ in
                if !drainer.state.withLock({ $0.completed }) { task.cancel() }
            }
        }
    }

    /// Whether a stream's COMPLETED was handed over, its reader and the watchdog bounding the drain after it,
    /// shared by the reader, the watchdog and the stream's termination handler.
    private final class Drainer: Sendable {
        struct State {
            var completed = false
            var reader: Task<Void, Never>?
            var watchdog: Task<Void, Never>?
        }
        let state = Mutex(State())
    }

    /// Reads the stream at `url`, handing each status to `yield`, until COMPLETED.
    private func readStream(_ url: URL, yield: (RequestStatus) -> Void) async throws {
        guard endpoints.mayReceiveKey(url) else {
            throw FalError(kind: .foreignOrigin(FalOrigin.of(url) ?? url.absoluteString), operation: .status, url: url.absoluteString)
        }
        var request = HTTPClientRequest(url: url.absoluteString)
        request.headers.add(name: "Authorization", value: key.authorizationHeader)
        request.headers.add(name: "Accept", value: "text/event-stream")
        request.headers.add(name: "User-Agent", value: FalClient.userAgent)
        let response: HTTPClientResponse
        let started = ContinuousClock.now
        do {
            response = try await Self.streamHTTP.execute(request, timeout: .init(timeouts.call))
            Self.recordLatency(.status, since: started)
        } catch {
            if Task.isCancelled { throw CancellationError() }
            contact.missed()
            throw FalError(kind: .transport(Self.describeTransport(error)), operation: .status, url: url.absoluteString)
        }
        guard response.status == .ok else {
            if response.status.code >= 500 { contact.missed() } else { contact.reached() }
            var body = try await response.body.collect(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for header in response.headers { headers[header.name.lowercased()] = header.value }
            let answer = FalHTTPAnswer(status: Int(response.status.code), headers: headers, body: body.readData(length: body.readableBytes) ?? Data())
            throw FalResponseClassifier.error(for: answer, operation: .status, url: url.absoluteString)
                ?? StreamEnded(description: "the status stream answered \(response.status.code)")
        }
        contact.reached()
        var parser = SSEParser()
        do {
            var chunks = response.body.makeAsyncIterator()
            while let chunk = try await chunks.next() {
                for event in parser.feed(chunk.readableBytesView) where !event.data.isEmpty {
                    let json: JSONValue
                    do { json = try JSONValue.parse(Data(event.data.utf8)) } catch { throw StreamEnded(description: "the status stream sent an event that is not JSON") }
                    let status = try Self.parseStatus(json, url: url, operation: .status)
                    yield(status)
                    if case .completed = status.state {
                        // To the stream's end: a cut or a cancellation here only means the connection is not reused.
                        while (try? await chunks.next()) ?? nil != nil {}
                        return
                    }
                }
            }
        } catch let error as StreamEnded {
            throw error
        } catch let error as FalError {
            throw error
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw StreamEnded(description: "the status stream broke: \(Self.describeTransport(error))")
        }
        throw StreamEnded(description: "the status stream ended before the request completed")
    }
}
