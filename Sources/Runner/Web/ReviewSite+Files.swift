import Crypto
import Foundation
import Hummingbird
import JobStore
import KlingCore
import KlingSpec

extension ReviewSite {
    /// `/files/{video,manifest,poster}/ID`: a job's files, only from inside the output root. The path comes from
    /// the store, never from the URL, and is resolved first: a symlink that leads out of the root answers 404.
    func file(_ request: Request, kind: String, id: Int64, context: some RequestContext) async throws -> Response {
        guard let job = try await store.job(id) else { throw HTTPError(.notFound) }
        let path: String?
        let type: String
        switch kind {
        case "video": (path, type) = (job.state == .completed ? job.videoPath : nil, "video/mp4")
        case "manifest": (path, type) = (job.manifestPath, "application/json")
        case "poster": (path, type) = (posterPath(of: job), "image/jpeg")
        default: throw HTTPError(.notFound)
        }
        guard let path, let resolved = Self.resolvedInside(root: layout.root, path: path) else { throw HTTPError(.notFound) }
        return try await serve(resolved.path, size: resolved.size, type: type, request: request, context: context)
    }

    /// `/files/input/ID/N`: the job's Nth input image, when it is a local file that still holds the bytes the spec
    /// was validated with (its SHA-256 is checked), so only known inputs are ever served.
    func input(_ request: Request, id: Int64, index: Int, context: some RequestContext) async throws -> Response {
        guard let job = try await store.job(id), let spec = try? JSONDecoder().decode(JobSpec.self, from: Data(job.specJson.utf8)),
            spec.allImages.indices.contains(index), case .local(let image) = spec.allImages[index]
        else { throw HTTPError(.notFound) }
        var info = stat()
        guard lstat(image.path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size <= 64 << 20,
            let bytes = FileManager.default.contents(atPath: image.path), SHA256.hash(data: bytes).hexString == image.sha256
        else { throw HTTPError(.notFound) }
        var headers = Self.securityHeaders
        headers[.contentType] = image.header.format.contentType
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// The poster frame beside a finished video (`<name>.jpg`), when one was made.
    func posterPath(of job: JobRecord) -> String? {
        guard job.state == .completed, let video = job.videoPath else { return nil }
        let poster = PosterMaker.posterPath(ofVideo: video)
        return FileManager.default.fileExists(atPath: poster) ? poster : nil
    }

    /// `path` with every symlink resolved, when it is a regular file inside `root` (also resolved); nil otherwise.
    static func resolvedInside(root: String, path: String) -> (path: String, size: Int)? {
        guard let realRoot = realpath(root, nil), let realFile = realpath(path, nil) else { return nil }
        defer { free(realRoot); free(realFile) }
        let rootText = String(cString: realRoot), fileText = String(cString: realFile)
        guard fileText.hasPrefix(rootText.hasSuffix("/") ? rootText : rootText + "/") else { return nil }
        var info = stat()
        guard stat(fileText, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return (fileText, Int(info.st_size))
    }

    /// A file, whole or the one byte range asked for (browsers seek videos with `Range`).
    private func serve(_ path: String, size: Int, type: String, request: Request, context: some RequestContext) async throws -> Response {
        var headers = Self.securityHeaders
        headers[.contentType] = type
        headers[.acceptRanges] = "bytes"
        let files = FileIO()
        if let range = request.headers[.range].flatMap({ Self.byteRange($0, size: size) }) {
            headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(size)"
            headers[.contentLength] = String(range.count)
            return Response(status: .partialContent, headers: headers, body: try await files.loadFile(path: path, range: range, context: context))
        }
        headers[.contentLength] = String(size)
        return Response(status: .ok, headers: headers, body: try await files.loadFile(path: path, context: context))
    }

    /// `bytes=A-B`, `bytes=A-` or `bytes=-N` within a file of `size` bytes; nil for anything else.
    static func byteRange(_ header: String, size: Int) -> ClosedRange<Int>? {
        guard size > 0, header.hasPrefix("bytes="), !header.contains(",") else { return nil }
        let parts = header.dropFirst(6).split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 else { return nil }
        if parts[0].isEmpty, let suffix = Int(parts[1]), suffix > 0 { return max(0, size - suffix)...(size - 1) }
        guard let start = Int(parts[0]), start < size else { return nil }
        let end = parts[1].isEmpty ? size - 1 : min(Int(parts[1]) ?? -1, size - 1)
        return end >= start ? start...end : nil
    }
}
