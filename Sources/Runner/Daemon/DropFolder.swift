import Foundation
import KlingSpec

/// The jobs folder's protocol: accepted files go to `accepted/<YYYY-MM-DD>/`, rejected ones to `rejected/` with
/// `<file>.errors.txt` beside them. Files are only ever moved, never deleted, and never overwrite another.
public struct DropFolder: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    public var acceptedRoot: String { root + "/accepted" }
    public var rejectedRoot: String { root + "/rejected" }

    /// Creates the folder and its two archives.
    public func prepare() throws {
        for folder in [root, acceptedRoot, rejectedRoot] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
    }

    /// Moves an accepted file into today's archive; returns where it went.
    @discardableResult
    public func archiveAccepted(_ path: String, now: Date = Date()) throws -> String {
        try move(path, into: acceptedRoot + "/" + OutputLayout.day(of: now), besideReasons: false)
    }

    /// Moves a rejected file aside and writes why beside it; returns where it went.
    @discardableResult
    public func archiveRejected(_ path: String, reasons: [String], now: Date = Date()) throws -> String {
        let target = try move(path, into: rejectedRoot, besideReasons: true)
        let stamp = ISO8601DateFormatter().string(from: now)
        let text = "# \((path as NSString).lastPathComponent) was rejected at \(stamp); nothing in it was run.\n"
            + "# Fix it and drop it into \(root) again (or run `kling-batch validate` on it first).\n"
            + reasons.joined(separator: "\n") + "\n"
        try AtomicFile.write(Data(text.utf8), to: target + ".errors.txt")
        return target
    }

    /// The reasons written for an invalid file: the same lines `kling-batch validate` prints.
    public static func reasons(for report: SpecReport) -> [String] {
        report.diagnostics.map(\.description) + ["invalid \(report.file): \(report.errors.count) problem\(report.errors.count == 1 ? "" : "s"); nothing in this file will run"]
    }

    /// Renames `path` into `folder` (created when missing), choosing `name-2.yaml`, `name-3.yaml`… when the name is
    /// taken, or when `besideReasons` and the name's `.errors.txt` is left from an earlier file.
    ///
    /// rename(2) would replace a file of the same name, so the file is linked to its new name (which fails when the
    /// name is taken, even in a race) and then unlinked from the old one; that is also one system call fewer per
    /// accepted file than asking first.
    private func move(_ path: String, into folder: String, besideReasons: Bool) throws -> String {
        let name = (path as NSString).lastPathComponent
        let stem = (name as NSString).deletingPathExtension
        let ext = (name as NSString).pathExtension
        var index = 1
        var createdFolder = false
        while true {
            let candidate = folder + "/" + (index == 1 ? name : stem + "-\(index)" + (ext.isEmpty ? "" : "." + ext))
            if besideReasons && FileManager.default.fileExists(atPath: candidate + ".errors.txt") {
                index += 1
                continue
            }
            if link(path, candidate) == 0 {
                unlink(path)
                return candidate
            }
            switch errno {
            case EEXIST:
                index += 1
            case ENOENT where !createdFolder && !FileManager.default.fileExists(atPath: folder):
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                createdFolder = true
            default:
                // A file system without hard links (or the file vanished): a plain move, which reports why it failed.
                guard FileManager.default.fileExists(atPath: candidate) else {
                    try FileManager.default.moveItem(atPath: path, toPath: candidate)
                    return candidate
                }
                index += 1
            }
        }
    }
}
