import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Collects a submit's answer and records whether any of the request was handed to the connection.
///
/// AsyncHTTPClient reports "request sent" only after several hops between event loops, and a server that has the
/// whole body can answer (or reset) before that report arrives: a soak caught a lost answer classified "not sent"
/// and paid twice. So the bit kept is the earliest one, the head: once it went out, fal may have the request.
final class SubmitDelegate: HTTPClientResponseDelegate, @unchecked Sendable {
    typealias Response = FalHTTPAnswer

    private let lock = NIOLock()
    private var headSent = false
    private var status = 0
    private var headers: [String: String] = [:]
    private var body = ByteBuffer()
    private let maxBytes: Int

    init(maxBytes: Int) {
        self.maxBytes = maxBytes
    }

    /// True once the request head was written to the connection: from then on fal may have the whole request.
    var headWasSent: Bool { lock.withLock { headSent } }

    func didSendRequestHead(task: HTTPClient.Task<FalHTTPAnswer>, _ head: HTTPRequestHead) {
        lock.withLock { headSent = true }
    }

    func didReceiveHead(task: HTTPClient.Task<FalHTTPAnswer>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        lock.withLock {
            status = Int(head.status.code)
            for header in head.headers { headers[header.name.lowercased()] = header.value }
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<FalHTTPAnswer>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let accepted: Bool = lock.withLock {
            guard body.readableBytes + buffer.readableBytes <= maxBytes else { return false }
            var buffer = buffer
            body.writeBuffer(&buffer)
            return true
        }
        return accepted ? task.eventLoop.makeSucceededVoidFuture() : task.eventLoop.makeFailedFuture(NIOTooManyBytesError(maxBytes: maxBytes))
    }

    func didFinishRequest(task: HTTPClient.Task<FalHTTPAnswer>) throws -> FalHTTPAnswer {
        lock.withLock {
            FalHTTPAnswer(status: status, headers: headers, body: Data(body.readableBytesView))
        }
    }
}
