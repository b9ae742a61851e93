import Foundation
import HTTPTypes
import Hummingbird
import KlingCore
import NIOCore

extension EmulatorResponder {
    func uploadInitiate(request: Request) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: 1 << 20)
        let json = try? JSONValue.parse(Data(body.readableBytesView))
        guard let fileName = json?["file_name"]?.stringValue, !fileName.isEmpty,
            let contentType = json?["content_type"]?.stringValue, !contentType.isEmpty
        else {
            return Self.json(.unprocessableContent, ["detail": [["loc": ["body"], "msg": "file_name and content_type are required", "type": "missing", "url": "https://docs.fal.ai/errors#missing"]]])
        }
        let token = await state.initiateUpload(fileName: fileName, contentType: contentType)
        let base = await state.baseURL
        let safeName = fileName.map { $0.isLetter || $0.isNumber || "._-".contains($0) ? $0 : "_" }
        return Self.json(.ok, [
            "upload_url": .string(base.appendingPathComponent("_storage/upload/\(token)").absoluteString),
            "file_url": .string(base.appendingPathComponent("files/uploads/\(token)/\(String(safeName))").absoluteString),
        ])
    }

    func uploadPut(token: String, request: Request) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: 100 << 20)
        guard await state.completeUpload(token: token, bytes: Data(body.readableBytesView)) else {
            return Self.json(.notFound, ["detail": "Unknown or expired upload URL"])
        }
        return Response(status: .ok)
    }

    func uploadedFile(token: String) async -> Response {
        guard let file = await state.uploadedFile(token: token) else {
            return Self.json(.notFound, ["detail": "File not found"])
        }
        return Response(
            status: .ok, headers: [.contentType: file.contentType],
            body: .init(byteBuffer: ByteBuffer(bytes: file.bytes)))
    }

    /// Serves a result video with `Content-Length` and single-range support, streamed chunk by chunk.
    func resultFile(requestID: String, request: Request, truncate: Bool) async -> Response {
        let layout: VideoLayout
        switch await state.resultVideo(requestID: requestID, now: Date()) {
        case .video(let found): layout = found
        case .notFound: return Self.json(.notFound, ["detail": "File not found"])
        case .expired: return Self.json(.notFound, ["detail": "File has expired"])
        }
        let total = layout.totalBytes
        var status = HTTPResponse.Status.ok
        var range = 0..<total
        var headers: HTTPFields = [.contentType: "video/mp4", .acceptRanges: "bytes"]
        let rangeHeader = await state.configuration.ignoreRangeRequests ? nil : request.headers[.range]
        if let rangeHeader {
            guard let requested = ByteRange(rangeHeader)?.resolved(totalBytes: total) else {
                headers[.contentRange] = "bytes */\(total)"
                return Response(status: .rangeNotSatisfiable, headers: headers)
            }
            range = requested
            status = .partialContent
            headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(total)"
        }
        headers[.contentLength] = String(range.count)
        if truncate {
            let fraction = await state.configuration.truncateFraction
            let cut = min(range.count - 1, max(0, Int(Double(range.count) * fraction)))
            headers[FaultChannelHandler.marker] = "truncate=\(cut)"
        }
        await state.countDownload(bytes: range.count, ranged: rangeHeader != nil)
        let chunks = layout.chunks(in: range)
        return Response(
            status: status, headers: headers,
            body: ResponseBody(contentLength: range.count) { writer in
                for chunk in chunks { try await writer.write(layout.bytes(of: chunk)) }
                try await writer.finish(nil)
            })
    }
}

/// A single `Range: bytes=…` request: `a-b`, `a-` or `-n`.
struct ByteRange: Equatable {
    var first: Int?
    var last: Int?

    init?(_ header: String) {
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.hasPrefix("bytes="), !text.contains(",") else { return nil }
        let bounds = text.dropFirst(6).split(separator: "-", omittingEmptySubsequences: false)
        guard bounds.count == 2 else { return nil }
        first = bounds[0].isEmpty ? nil : Int(bounds[0])
        last = bounds[1].isEmpty ? nil : Int(bounds[1])
        if first == nil && last == nil { return nil }
        if !bounds[0].isEmpty && first == nil { return nil }
        if !bounds[1].isEmpty && last == nil { return nil }
    }

    /// The byte indices to send, or nil when the range cannot be satisfied.
    func resolved(totalBytes: Int) -> Range<Int>? {
        switch (first, last) {
        case (let first?, let last?):
            guard first <= last, first < totalBytes else { return nil }
            return first..<min(last + 1, totalBytes)
        case (let first?, nil):
            guard first < totalBytes else { return nil }
            return first..<totalBytes
        case (nil, let suffix?):
            guard suffix > 0, totalBytes > 0 else { return nil }
            return max(0, totalBytes - suffix)..<totalBytes
        case (nil, nil):
            return nil
        }
    }
}
