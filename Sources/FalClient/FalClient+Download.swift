import AsyncHTTPClient
import Foundation
import KlingCore
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import SystemPackage

extension FalClient {
    /// Streams a result file to `destination` without holding it in memory.
    ///
    /// Bytes go to a hidden `.<name>.part` beside `destination`, renamed onto `destination` only when the promised
    /// length has arrived, so nothing half-written is ever visible under the video's name; a transfer cut in the
    /// middle is resumed with a Range request (also across process restarts, since the `.part` file stays).
    /// No key is sent: result URLs are public CDN URLs. A failure to write our own disk throws `LocalWriteError`.
    /// - Parameters:
    ///   - expectedBytes: fal's `file_size`, when it gave one; a different length is an error.
    ///   - maxResumes: how many cut transfers to resume before giving up with a retryable error.
    public func download(
        from url: URL, to destination: FilePath, expectedBytes: Int64? = nil, maxResumes: Int = 5
    ) async throws -> DownloadReport {
        let partPath = Self.partPath(for: destination)
        // A partial file left under the visible name by an older version is carried over, hidden.
        _ = rename(destination.string + ".part", partPath.string)
        var sink = try FileSink(path: partPath)
        var resumes = 0
        var totalBytes: Int64? = expectedBytes
        while true {
            do {
                try await transfer(from: url, into: &sink, totalBytes: &totalBytes)
                if let totalBytes, sink.size < totalBytes {
                    throw FalError(
                        kind: .transport("transfer ended after \(sink.size) of \(totalBytes) bytes"), operation: .download,
                        url: url.absoluteString)
                }
                break
            } catch let error as FalError where error.kind.isResumable && resumes < maxResumes {
                resumes += 1
                logger.debug(
                    "download cut, resuming", metadata: ["url": "\(error.url)", "at": "\(sink.size)", "resume": "\(resumes)"])
                try await Task.sleep(for: .milliseconds(100 * resumes))
                continue
            } catch {
                sink.abandon()
                throw error
            }
        }
        let size = sink.size
        let sha256 = try sink.finish()
        guard rename(partPath.string, destination.string) == 0 else { throw LocalWriteError.current("video", path: destination.string) }
        return DownloadReport(bytes: size, sha256: sha256, resumes: resumes)
    }

    /// `<folder>/.<name>.part`: hidden from people and from anything that picks up `*.mp4`.
    public static func partPath(for destination: FilePath) -> FilePath {
        let text = destination.string
        let slash = text.lastIndex(of: "/").map { text.index(after: $0) } ?? text.startIndex
        return FilePath(String(text[..<slash]) + "." + String(text[slash...]) + ".part")
    }

    /// One GET (following up to 5 redirects), appending to `sink` from its current size.
    private func transfer(from url: URL, into sink: inout FileSink, totalBytes: inout Int64?) async throws {
        if let total = totalBytes, sink.size == total, sink.size > 0 { return }
        if let total = totalBytes, sink.size > total { try resetSink(&sink, url: url) }
        var target = url
        for _ in 0..<6 {
            var request = HTTPClientRequest(url: target.absoluteString)
            request.headers.add(name: "User-Agent", value: FalClient.userAgent)
            if sink.size > 0 { request.headers.add(name: "Range", value: "bytes=\(sink.size)-") }
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, timeout: .init(timeouts.downloadHead))
            } catch {
                if Task.isCancelled { throw CancellationError() }
                contact.missed()
                throw FalError(kind: .transport(Self.describeTransport(error)), operation: .download, url: target.absoluteString)
            }
            let status = Int(response.status.code)
            // A video being served is fal answering: a run that is downloading is not stuck.
            if status >= 500 { contact.missed() } else { contact.reached() }
            if (300..<400).contains(status), let location = response.headers.first(name: "location"),
                let next = URL(string: location, relativeTo: target)?.absoluteURL
            {
                target = next
                continue
            }
            guard try await shouldStream(response, sink: &sink, totalBytes: &totalBytes, target: target, url: url) else { return }
            try await stream(response, into: &sink, totalBytes: totalBytes, target: target)
            return
        }
        throw FalError(kind: .malformedResponse("too many redirects"), operation: .download, url: url.absoluteString)
    }

    /// Checks an answer's status against what we asked for; false when the file is already complete.
    private func shouldStream(
        _ response: HTTPClientResponse, sink: inout FileSink, totalBytes: inout Int64?, target: URL, url: URL
    ) async throws -> Bool {
        let status = Int(response.status.code)
        switch status {
        case 200:
            if sink.size > 0 { try resetSink(&sink, url: url) }  // the server ignored our Range: start over
            let contentLength = response.headers.first(name: "content-length").flatMap { Int64($0) }
            try checkLength(contentLength, against: &totalBytes, url: target)
        case 206:
            let range = response.headers.first(name: "content-range").flatMap(ContentRange.init)
            guard let range, range.first == sink.size else {
                try resetSink(&sink, url: url)
                throw FalError(kind: .transport("server resumed at the wrong offset"), operation: .download, url: target.absoluteString)
            }
            try checkLength(range.complete, against: &totalBytes, url: target)
        case 416 where totalBytes == sink.size:
            return false
        case 416:
            try resetSink(&sink, url: url)
            throw FalError(kind: .transport("range not satisfiable; restarting"), operation: .download, url: target.absoluteString)
        default:
            let body = try? await response.body.collect(upTo: 64 << 10)
            let data = body.map { Data($0.readableBytesView) } ?? Data()
            var headers: [String: String] = [:]
            for header in response.headers { headers[header.name.lowercased()] = header.value }
            let answer = FalHTTPAnswer(status: status, headers: headers, body: data)
            throw FalResponseClassifier.error(for: answer, operation: .download, url: target.absoluteString)
                ?? FalError(kind: .malformedResponse("HTTP \(status)"), operation: .download, url: target.absoluteString)
        }
        return true
    }

    /// Appends the answer's body to `sink`; a cut transfer is a transport error, more bytes than promised a bad answer.
    private func stream(_ response: HTTPClientResponse, into sink: inout FileSink, totalBytes: Int64?, target: URL) async throws {
        do {
            for try await buffer in response.body {
                try buffer.withUnsafeReadableBytes { try sink.append($0) }
                if let total = totalBytes, sink.size > total {
                    throw FalError(
                        kind: .malformedResponse("more bytes than the \(total) promised"), operation: .download,
                        url: target.absoluteString)
                }
            }
        } catch let error as FalError {
            throw error
        } catch let error as LocalWriteError {
            throw error
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw FalError(
                kind: .transport("transfer cut after \(sink.size) bytes: \(Self.describeTransport(error))"),
                operation: .download, url: target.absoluteString)
        }
    }

    private func resetSink(_ sink: inout FileSink, url: URL) throws {
        try sink.reset()
    }

    /// The whole file's length as the server states it must agree with what fal promised.
    private func checkLength(_ stated: Int64?, against expected: inout Int64?, url: URL) throws {
        guard let stated else { return }
        if let known = expected, known != stated {
            throw FalError(
                kind: .malformedResponse("the server sends \(stated) bytes but \(known) were promised"), operation: .download,
                url: url.absoluteString)
        }
        expected = stated
    }
}

extension FalError.Kind {
    /// Failures after which the same download may continue from where it stopped.
    var isResumable: Bool {
        switch self {
        case .transport, .serverError, .rateLimited: return true
        default: return false
        }
    }
}

/// A `Content-Range: bytes first-last/complete` header.
struct ContentRange: Equatable {
    var first: Int64
    var last: Int64
    var complete: Int64?

    init?(_ header: String) {
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.hasPrefix("bytes ") else { return nil }
        let parts = text.dropFirst(6).split(separator: "/")
        guard parts.count == 2 else { return nil }
        let bounds = parts[0].split(separator: "-")
        guard bounds.count == 2, let first = Int64(bounds[0]), let last = Int64(bounds[1]), first <= last else { return nil }
        self.first = first
        self.last = last
        self.complete = parts[1] == "*" ? nil : Int64(parts[1])
    }
}


