import Foundation

/// Which files in a folder are spec files: `.yaml`, `.yml` and `.json`, never hidden, temporary or editor files.
public enum SpecFiles {
    public static let extensions: Set<String> = ["yaml", "yml", "json"]

    /// Whether a file name is one a writer is still working on or that is not ours to read.
    public static func isIgnored(_ name: String) -> Bool {
        name.hasPrefix(".") || name.hasSuffix("~") || name.hasSuffix(".tmp") || name.hasSuffix(".part")
            || name.hasSuffix(".swp") || name.hasSuffix(".swx") || name.hasSuffix(".swo")
            || (name.hasPrefix("#") && name.hasSuffix("#")) || name.hasSuffix(".errors.txt")
    }

    /// Whether `name` is a spec file by its name.
    public static func isSpecFile(_ name: String) -> Bool {
        !isIgnored(name) && extensions.contains((name as NSString).pathExtension.lowercased())
    }

    /// The spec files among `paths`: files as given, and the spec files directly inside folders, sorted by name.
    /// Inside a folder, a symlink is followed only when its target is a file inside that same folder; others are
    /// refused without being read (a link to `/etc/shadow` must not end up in an errors file or a log), and each
    /// file is read once, here, so what is judged is what is read.
    /// Throws when a path does not exist.
    public static func expand(_ paths: [String]) throws -> SpecFileList {
        var list = SpecFileList()
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw SpecFilesError(message: "\(path): no such file or folder")
            }
            guard isDirectory.boolValue else {
                list.files.append(SpecFile(path: path, contents: nil))
                continue
            }
            let folder = path.hasSuffix("/") ? String(path.dropLast()) : path
            for name in try FileManager.default.contentsOfDirectory(atPath: path).filter(isSpecFile).sorted() {
                let full = folder + "/" + name
                if case .notALink(isFile: false) = link(name, in: folder) { continue }
                switch readInside(name, in: folder) {
                case .contents(let bytes): list.files.append(SpecFile(path: full, contents: bytes))
                case .refused(let message): list.refused.append(.refused(file: full, message: message))
                case .gone: continue
                }
            }
        }
        return list
    }

    /// The one message for a link that is not followed.
    public static let linkRefusal = "is a symbolic link to something outside the jobs folder (or to nothing); it was not read. "
        + "Links are followed only to spec files inside the folder: copy the file in instead."

    /// What an entry of `folder` is, as far as following it goes.
    public enum LinkCheck: Sendable, Equatable {
        /// Not a link; `isFile` when it is a regular file.
        case notALink(isFile: Bool)
        /// A link to a regular file inside the folder: followed.
        case inside
        /// A link to somewhere else: refused.
        case outside
        /// A link to nothing (or to something that is not a regular file): refused.
        case dangling
    }

    /// Resolves a link with realpath(3) and compares it with the folder's own real path, so `..` and chains of
    /// links cannot lead out; only the target's kind is looked at, never its content.
    public static func link(_ name: String, in folder: String) -> LinkCheck {
        let path = folder + "/" + name
        var info = stat()
        guard lstat(path, &info) == 0 else { return .dangling }
        guard (info.st_mode & S_IFMT) == S_IFLNK else { return .notALink(isFile: (info.st_mode & S_IFMT) == S_IFREG) }
        guard let target = realPath(path), let root = realPath(folder) else { return .dangling }
        guard target.hasPrefix(root == "/" ? "/" : root + "/") else { return .outside }
        var targetInfo = stat()
        guard stat(target, &targetInfo) == 0, (targetInfo.st_mode & S_IFMT) == S_IFREG else { return .dangling }
        return .inside
    }

    /// realpath(3): the absolute path with every link resolved; nil when it does not exist.
    public static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// Spec files found on the command line: the ones to validate, and the ones refused without reading.
public struct SpecFileList: Sendable {
    public var files: [SpecFile] = []
    public var refused: [SpecReport] = []
}

/// A spec file to validate: found in a folder, it was already read (see `readInside`); named by hand, it is read
/// by its path.
public struct SpecFile: Sendable {
    public let path: String
    public let contents: [UInt8]?

    public init(path: String, contents: [UInt8]?) {
        self.path = path
        self.contents = contents
    }
}

extension SpecValidator {
    /// Validates what was read, or the file at its path.
    public func validate(_ file: SpecFile) -> SpecReport {
        file.contents.map { validate(contents: $0, path: file.path) } ?? validate(fileAt: file.path)
    }
}

/// A path given on the command line that is not there.
public struct SpecFilesError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
