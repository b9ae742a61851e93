import Crypto
import Foundation
import KlingCore
import Yams

/// Validates spec files before any money is spent: every mistake found, all at once, with file, line,
/// column, field path and what is allowed.
///
/// Pure apart from reading the spec and its local images; hostile files (binary, huge, deeply nested,
/// alias bombs) are refused without crashing or hanging.
public struct SpecValidator: Sendable {
    public struct Options: Sendable {
        /// Absolute folders local images may live in besides the spec's own folder (`--allow-root`).
        public var allowedRoots: [String] = []
        /// The folder relative image paths start from (`--base`); nil: see `imageBase(forSpecAt:)`.
        public var base: String?
        /// Spec files larger than this are refused unread.
        public var maxFileBytes = 1 << 20
        /// Kling's limits on images.
        public var maxImageBytes = 10 << 20
        public var minImageSide = 300
        public var maxAspectRatio = 2.5
        public static let maxPromptLength = 2500
        public static let maxInputs = 7
        public static let durations = 3...10

        public init() {}
    }

    public var options: Options
    /// Shared by copies of this validator, so a reference image used by many spec files is read once.
    public let imageCache: ImageInspectionCache?

    public init(options: Options = .init(), imageCache: ImageInspectionCache? = ImageInspectionCache()) {
        self.options = options
        self.imageCache = imageCache
    }

    /// Reads and validates the file at `path` (relative paths are taken from the working directory).
    public func validate(fileAt path: String) -> SpecReport {
        let absolute = Self.absolute(path)
        var reader = SpecReader(file: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory) else {
            reader.fileError("no such file")
            return report(path, absolute, sha: nil, jobs: [], reader)
        }
        guard !isDirectory.boolValue else {
            reader.fileError("is a folder, not a spec file")
            return report(path, absolute, sha: nil, jobs: [], reader)
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: absolute)[.size] as? NSNumber)?.intValue ?? 0
        guard size <= options.maxFileBytes else {
            reader.fileError("is \(Self.megabytes(size)); spec files may be at most \(Self.megabytes(options.maxFileBytes))")
            return report(path, absolute, sha: nil, jobs: [], reader)
        }
        guard let data = FileManager.default.contents(atPath: absolute) else {
            reader.fileError("cannot be read (permissions?)")
            return report(path, absolute, sha: nil, jobs: [], reader)
        }
        return validate(contents: Array(data), path: path)
    }

    /// Validates bytes as if they were the file at `path`; local images are resolved against its folder.
    public func validate(contents bytes: [UInt8], path: String) -> SpecReport {
        let absolute = Self.absolute(path)
        var reader = SpecReader(file: path)
        let sha = SHA256.hash(data: bytes).hexString
        guard bytes.count <= options.maxFileBytes else {
            reader.fileError("is \(Self.megabytes(bytes.count)); spec files may be at most \(Self.megabytes(options.maxFileBytes))")
            return report(path, absolute, sha: sha, jobs: [], reader)
        }
        var body = bytes
        if body.starts(with: [0xEF, 0xBB, 0xBF]) { body.removeFirst(3) }
        guard !body.contains(0), let text = String(validating: body, as: UTF8.self) else {
            reader.fileError("is not a text file (YAML or JSON in UTF-8 expected)")
            return report(path, absolute, sha: sha, jobs: [], reader)
        }
        if let finding = YAMLSafetyCheck().check(body) {
            reader.fileError(finding.message, line: finding.line, column: finding.column)
            return report(path, absolute, sha: sha, jobs: [], reader)
        }
        let root: Node?
        do {
            // Every scalar is read as the text written (NodeReading), so Yams's regex tag resolution is skipped;
            // an explicit encoding keeps Yams from reading the environment on every parse.
            root = try Parser(yaml: text, resolver: .basic, encoding: .utf8).singleRoot()
        } catch {
            let (message, line, column) = Self.describe(error)
            reader.fileError(message, line: line, column: column)
            return report(path, absolute, sha: sha, jobs: [], reader)
        }
        guard let root, !root.isNull else {
            reader.fileError("holds no job: it is empty or only comments; a spec needs at least a prompt")
            return report(path, absolute, sha: sha, jobs: [], reader)
        }
        let base = imageBase(forSpecAt: absolute)
        var context = JobContext(directory: base, options: options, imageCache: imageCache)
        if options.base != nil {
            context.baseName = "the --base folder \(base)"
        } else if base != Self.parent(of: absolute) {
            context.baseName = "the drop folder \(base) (the spec was dropped there)"
        }
        let jobs = reader.readFile(root, stem: Self.stem(of: path), context: &context)
        // A rows: file is part of what the file means: the same spec with another CSV is another batch.
        let identity = context.identityExtras.isEmpty ? sha : SHA256.hash(data: bytes + context.identityExtras).hexString
        var result = report(path, absolute, sha: identity, jobs: reader.hasErrors ? [] : jobs, reader, expansion: context.expansionSummary)
        result.onComplete = context.onComplete
        return result
    }

    private func report(
        _ path: String, _ absolute: String, sha: String?, jobs: [JobSpec], _ reader: SpecReader, expansion: SpecExpansionSummary? = nil
    ) -> SpecReport {
        // A problem in defaults: is found once per job that inherits it; report it once.
        var seen = Set<SpecDiagnostic>()
        let unique = reader.diagnostics.filter { seen.insert($0).inserted }
        let sorted = unique.enumerated().sorted { a, b in
            let left = (a.element.line ?? 0, a.element.column ?? 0, a.offset)
            let right = (b.element.line ?? 0, b.element.column ?? 0, b.offset)
            return left < right
        }.map(\.element)
        return SpecReport(
            file: path, absolutePath: absolute, sha256: sha, batchName: Self.stem(of: path), jobs: jobs, diagnostics: sorted,
            expansion: jobs.isEmpty ? nil : expansion)
    }

    /// The file name without its extension, made safe as a name: other characters become `-`.
    public static func stem(of path: String) -> String {
        if let plain = plainStem(of: path) { return plain }
        let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        var safe = String(name.map { JobNameRule.isAllowed($0) ? $0 : "-" })
        while safe.hasPrefix(".") || safe.hasPrefix("-") { safe.removeFirst() }
        return safe.isEmpty ? "spec" : String(safe.prefix(JobNameRule.maxLength - 4))
    }

    /// The stem of the common name, `take-12.yaml`, found from its bytes alone: the same as `stem(of:)`'s general
    /// way, which bridges to NSString twice and showed in ingest profiles; nil for any other name.
    static func plainStem(of path: String) -> String? {
        guard !path.hasSuffix("/") else { return nil }
        let name = lastComponent(of: path).utf8
        guard let first = name.first, first != UInt8(ascii: "."), first != UInt8(ascii: "-"),
            let dot = name.lastIndex(of: UInt8(ascii: ".")), name.index(after: dot) != name.endIndex,
            name.allSatisfy(JobNameRule.isAllowed), name.distance(from: name.startIndex, to: dot) <= JobNameRule.maxLength - 4
        else { return nil }
        return String(Substring(name[..<dot]))
    }

    static func absolute(_ path: String) -> String {
        if isStandardAbsolute(path) { return path }
        let expanded = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return URL(fileURLWithPath: expanded).standardizedFileURL.path
    }

    /// Whether `path` is already what `absolute` makes of it (absolute, no `.` or `..` segment, no empty one, no
    /// trailing slash), so that the drop folder's paths skip Foundation's URL round trip.
    static func isStandardAbsolute(_ path: String) -> Bool {
        guard path.hasPrefix("/"), path.utf8.count > 1 else { return false }
        return path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst().allSatisfy { segment in
            !segment.isEmpty && !segment.elementsEqual([UInt8(ascii: ".")]) && !segment.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")])
        }
    }

    static func megabytes(_ bytes: Int) -> String {
        bytes % (1 << 20) == 0 ? "\(bytes >> 20) MB" : String(format: "%.1f MB", Double(bytes) / Double(1 << 20))
    }

    /// A Yams error as a message and position.
    static func describe(_ error: any Error) -> (String, Int?, Int?) {
        guard let error = error as? YamlError else { return ("cannot be read as YAML: \(error)", nil, nil) }
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return ("YAML syntax: \(problem)", mark.line, mark.column)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            return ("the key \(keys) appears twice in the same mapping; each key may appear once", context.mark.line, context.mark.column)
        case .reader(let problem, _, _, _):
            return ("not readable as text: \(problem)", nil, nil)
        default:
            return ("cannot be read as YAML: \(error)", nil, nil)
        }
    }
}

/// What job names may be: they become file names, so letters, digits, `.`, `_` and `-`, not starting with `.` or `-`.
public enum JobNameRule {
    public static let maxLength = 100

    static func isAllowed(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || "._-".contains(character))
    }

    /// `isAllowed` for one byte of UTF-8 (a byte of a longer character is never allowed).
    static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"): return true
        default: return false
        }
    }

    /// Nil when `name` is acceptable; otherwise why not.
    public static func problem(with name: String) -> String? {
        if name.isEmpty { return "a name cannot be empty" }
        if name.count > maxLength { return "a name may be at most \(maxLength) characters" }
        if let bad = name.first(where: { !isAllowed($0) }) {
            return "'\(name)' contains '\(bad)'; names may use letters, digits, '.', '_' and '-'"
        }
        if name.hasPrefix(".") || name.hasPrefix("-") { return "'\(name)' may not start with '.' or '-'" }
        return nil
    }

    /// `value` with each character a name cannot hold replaced by `-`, for values written into a name (16:9 → 16-9).
    static func sanitize(_ value: String) -> String {
        String(value.map { isAllowed($0) ? $0 : "-" })
    }
}
