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
        let folder = acceptedRoot + "/" + OutputLayout.day(of: now)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return try move(path, into: folder)
    }

    /// Moves a rejected file aside and writes why beside it; returns where it went.
    @discardableResult
    public func archiveRejected(_ path: String, reasons: [String], now: Date = Date()) throws -> String {
        let target = try move(path, into: rejectedRoot)
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

    /// Renames `path` into `folder`, choosing `name-2.yaml`, `name-3.yaml`… when the name is taken.
    private func move(_ path: String, into folder: String) throws -> String {
        let name = (path as NSString).lastPathComponent
        let stem = (name as NSString).deletingPathExtension
        let ext = (name as NSString).pathExtension
        var candidate = folder + "/" + name
        var index = 2
        while FileManager.default.fileExists(atPath: candidate) || FileManager.default.fileExists(atPath: candidate + ".errors.txt") {
            candidate = folder + "/" + stem + "-\(index)" + (ext.isEmpty ? "" : "." + ext)
            index += 1
        }
        // rename(2) without replacing: link then unlink the old name, so a race never overwrites another file.
        if link(path, candidate) == 0 {
            unlink(path)
        } else {
            try FileManager.default.moveItem(atPath: path, toPath: candidate)
        }
        return candidate
    }
}
