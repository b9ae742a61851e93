import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Collects a submit's answer, up to `maxBytes`.
///
/// Nothing about whether the request was sent is taken from here: AsyncHTTPClient reports "head sent" and
/// "request sent" hops later than the bytes go out, and a server that has the whole body can answer (or reset)
/// first. A soak caught a lost answer classified "not sent" and paid twice, and a review found the same race with
/// a cancelled submit; only a connection that never opened proves nothing reached fal (`FalClient.neverConnected`).
final class SubmitDelegate: HTTPClientResponseDelegate, @unchecked Sendable {
    typealias Response = FalHTTPAnswer

    private let lock = NIOLock()
    private var status = 0
    private var headers: [String: String] = [:]
    private var body = ByteBuffer()
    private let maxBytes: Int

    init(maxBytes: Int) {
        self.maxBytes = maxBytes
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
