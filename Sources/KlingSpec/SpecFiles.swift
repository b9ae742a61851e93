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
    /// Throws when a path does not exist.
    public static func expand(_ paths: [String]) throws -> [String] {
        var found: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw SpecFilesError(message: "\(path): no such file or folder")
            }
            if isDirectory.boolValue {
                let names = try FileManager.default.contentsOfDirectory(atPath: path).filter(isSpecFile).sorted()
                let folder = path.hasSuffix("/") ? String(path.dropLast()) : path
                for name in names {
                    var entryIsDirectory: ObjCBool = false
                    let full = folder + "/" + name
                    if FileManager.default.fileExists(atPath: full, isDirectory: &entryIsDirectory), !entryIsDirectory.boolValue {
                        found.append(full)
                    }
                }
            } else {
                found.append(path)
            }
        }
        return found
    }
}

/// A path given on the command line that is not there.
public struct SpecFilesError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
