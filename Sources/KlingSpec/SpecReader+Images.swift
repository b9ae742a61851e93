import Crypto
import Foundation
import KlingCore
import Yams

#if canImport(Glibc)
import Glibc
#endif

/// Why an image reference was refused.
struct ImageProblem: Error, Equatable {
    let message: String
}

extension SpecReader {
    /// Reads one image reference: an https URL, a `data:` URI, or a local file checked on disk.
    mutating func readImage(_ node: Node, path: String, context: inout JobContext) -> ImageSource? {
        guard let raw = node.text, !node.isNull else {
            error(at: node, path, "an image is a local path, an https URL or a data: URI, not \(node.kindName)")
            return nil
        }
        let text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        let lower = text.lowercased()
        let result: Result<ImageSource, ImageProblem>
        if lower.hasPrefix("https://") {
            result = Self.checkRemote(text)
        } else if lower.hasPrefix("http://") {
            result = .failure(ImageProblem(message: "plain http URLs are not accepted; use an https URL, a data: URI or a local file"))
        } else if lower.hasPrefix("data:") {
            result = Self.checkDataURI(text, options: context.options)
        } else if let schemeEnd = text.range(of: "://"), !text[..<schemeEnd.lowerBound].contains("/") {
            result = .failure(ImageProblem(message: "'\(text[..<schemeEnd.lowerBound])' URLs are not accepted; use an https URL, a data: URI or a local file"))
        } else {
            result = Self.checkLocal(text, context: &context)
        }
        switch result {
        case .success(let source):
            return source
        case .failure(let problem):
            error(at: node, path, problem.message)
            return nil
        }
    }

    static func checkRemote(_ text: String) -> Result<ImageSource, ImageProblem> {
        guard let url = URL(string: text), let host = url.host, !host.isEmpty, !text.contains(where: \.isWhitespace) else {
            return .failure(ImageProblem(message: "'\(text)' is not a valid https URL"))
        }
        return .success(.remote(text))
    }

    /// A `data:image/...;base64,...` URI, decoded and checked like a local file.
    static func checkDataURI(_ text: String, options: SpecValidator.Options) -> Result<ImageSource, ImageProblem> {
        guard let comma = text.firstIndex(of: ",") else {
            return .failure(ImageProblem(message: "a data: URI needs a comma before its data (data:image/png;base64,...)"))
        }
        let header = text[text.index(text.startIndex, offsetBy: 5)..<comma].lowercased()
        guard header.hasSuffix(";base64") else {
            return .failure(ImageProblem(message: "a data: URI must be base64 encoded (data:image/png;base64,...)"))
        }
        guard let bytes = Data(base64Encoded: String(text[text.index(after: comma)...]), options: .ignoreUnknownCharacters), !bytes.isEmpty else {
            return .failure(ImageProblem(message: "the data: URI's base64 data cannot be decoded"))
        }
        switch checkImageBytes(Array(bytes), options: options) {
        case .success: return .success(.dataURI(text))
        case .failure(let problem): return .failure(ImageProblem(message: "the data: URI's content is \(problem.message)"))
        }
    }

    /// A local file: resolved against the spec's folder, kept inside it (or an allowed root), and checked.
    static func checkLocal(_ written: String, context: inout JobContext) -> Result<ImageSource, ImageProblem> {
        let real: String
        switch resolveInside(written, context: &context, noun: "images") {
        case .success(let path): real = path
        case .failure(let problem): return .failure(problem)
        }
        if let known = context.images[real] {
            return known.map { image in
                var copy = image
                copy.written = written
                return .local(copy)
            }
        }
        let checked = inspectFile(real, written: written, options: context.options, cache: context.imageCache)
        context.images[real] = checked
        return checked.map { .local($0) }
    }

    /// A path as a spec writes it, resolved with links against the spec's folder and refused when it leads outside
    /// that folder and the allowed roots: images and `rows:` files alike.
    static func resolveInside(_ written: String, context: inout JobContext, noun: String) -> Result<String, ImageProblem> {
        if written.hasPrefix("~") {
            return .failure(ImageProblem(message: "'\(written)': ~ is not expanded; write the path relative to \(context.baseName)"))
        }
        let candidate: String
        if written.hasPrefix("/") {
            guard !context.options.allowedRoots.isEmpty else {
                return .failure(ImageProblem(message: "'\(written)' is an absolute path; \(noun) must be inside \(context.baseName) (an operator can allow a root with --allow-root)"))
            }
            candidate = written
        } else {
            candidate = context.directory + "/" + written
        }
        guard let real = realPath(candidate) else {
            let reason = errno == ENOENT || errno == ENOTDIR ? "no such file" : String(cString: strerror(errno))
            return .failure(ImageProblem(message: "'\(written)': \(reason) (looked for \(candidate))"))
        }
        let roots = context.resolvedRoots()
        guard roots.contains(where: { real == $0 || real.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") }) else {
            let how = written.split(separator: "/").contains("..") ? "climbs out of \(context.baseName) with '..'" : "leads to \(real), outside \(context.baseName)"
            let allowed = context.options.allowedRoots.isEmpty ? "" : " and the allowed roots"
            return .failure(ImageProblem(message: "'\(written)' \(how); \(noun) must stay inside \(context.baseName)\(allowed)"))
        }
        return .success(real)
    }

    static func inspectFile(
        _ real: String, written: String, options: SpecValidator.Options, cache: ImageInspectionCache? = nil
    ) -> Result<LocalImage, ImageProblem> {
        var info = stat()
        guard stat(real, &info) == 0 else { return .failure(ImageProblem(message: "'\(written)': \(String(cString: strerror(errno)))")) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            return .failure(ImageProblem(message: "'\(written)' is not a regular file"))
        }
        let identity = ImageInspectionCache.Identity(info)
        if let known = cache?.lookup(real, identity: identity), known.byteCount <= options.maxImageBytes,
            case .success = checkHeader(known.header, options: options)
        {
            return .success(LocalImage(path: real, written: written, sha256: known.sha256, byteCount: known.byteCount, header: known.header))
        }
        guard Int(info.st_size) <= options.maxImageBytes else {
            return .failure(ImageProblem(message: "'\(written)' is \(SpecValidator.megabytes(Int(info.st_size))); images may be at most \(SpecValidator.megabytes(options.maxImageBytes))"))
        }
        guard let data = FileManager.default.contents(atPath: real) else {
            return .failure(ImageProblem(message: "'\(written)' cannot be read (permissions?)"))
        }
        let bytes = Array(data)
        switch checkImageBytes(bytes, options: options) {
        case .failure(let problem):
            return .failure(ImageProblem(message: "'\(written)' is \(problem.message)"))
        case .success(let header):
            let sha = SHA256.hash(data: bytes).hexString
            cache?.store(real, .init(identity: identity, sha256: sha, byteCount: bytes.count, header: header))
            return .success(LocalImage(path: real, written: written, sha256: sha, byteCount: bytes.count, header: header))
        }
    }

    /// Kling's image rules on bytes: an accepted format, at most 10 MB, at least 300 px a side, aspect within 1:2.5…2.5:1.
    static func checkImageBytes(_ bytes: [UInt8], options: SpecValidator.Options) -> Result<ImageHeader, ImageProblem> {
        guard bytes.count <= options.maxImageBytes else {
            return .failure(ImageProblem(message: "\(SpecValidator.megabytes(bytes.count)); images may be at most \(SpecValidator.megabytes(options.maxImageBytes))"))
        }
        let header: ImageHeader
        do {
            header = try ImageHeader.read(bytes)
        } catch {
            return .failure(ImageProblem(message: error.description))
        }
        return checkHeader(header, options: options)
    }

    /// Kling's rules on an image's size in pixels.
    static func checkHeader(_ header: ImageHeader, options: SpecValidator.Options) -> Result<ImageHeader, ImageProblem> {
        let size = "\(header.width)×\(header.height) px"
        if header.width < options.minImageSide || header.height < options.minImageSide {
            return .failure(ImageProblem(message: "\(size); images need at least \(options.minImageSide) px on each side"))
        }
        let ratio = Double(max(header.width, header.height)) / Double(min(header.width, header.height))
        if ratio > options.maxAspectRatio + 1e-9 {
            return .failure(ImageProblem(message: "\(size), an aspect ratio of \(String(format: "%.2f", ratio)):1; allowed: between 1:\(options.maxAspectRatio) and \(options.maxAspectRatio):1"))
        }
        return .success(header)
    }

    /// realpath(3): the absolute path with every symbolic link resolved; nil (with errno set) when it does not exist.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
