import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Collects a submit's answer and records whether the request body was completely handed to the socket.
///
/// That one bit decides what a failed submit means: before it, fal cannot have a complete request and the
/// submit may be retried freely; after it, fal may have accepted (and will bill) the request.
final class SubmitDelegate: HTTPClientResponseDelegate, @unchecked Sendable {
    typealias Response = FalHTTPAnswer

    private let lock = NIOLock()
    private var requestSent = false
    private var status = 0
    private var headers: [String: String] = [:]
    private var body = ByteBuffer()
    private let maxBytes: Int

    init(maxBytes: Int) {
        self.maxBytes = maxBytes
    }

    /// True once the whole request (head and body) was written to the connection.
    var bodyWasSent: Bool { lock.withLock { requestSent } }

    func didSendRequest(task: HTTPClient.Task<FalHTTPAnswer>) {
        lock.withLock { requestSent = true }
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
