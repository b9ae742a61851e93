import Foundation
import KlingCore
import KlingSpec

#if canImport(Glibc)
import Glibc
#endif

/// The jobs folder's protocol: accepted files go to `accepted/<YYYY-MM-DD>/`, rejected ones to `rejected/` with
/// `<file>.errors.txt` beside them. Files are only ever moved, never deleted, and never overwrite another.
///
/// Every move and write is made relative to folder descriptors held open (`linkat`, `renameat`, `openat` with
/// `O_NOFOLLOW`), and `accepted/` and `rejected/` must be real folders owned by this process's user: a symlink
/// planted there could otherwise send spec files, or our writes, anywhere on the machine.
public final class DropFolder: Sendable {
    public let root: String
    private let rootFD: Int32
    private let acceptedFD: Int32
    private let rejectedFD: Int32

    public var acceptedRoot: String { root + "/accepted" }
    public var rejectedRoot: String { root + "/rejected" }

    /// Opens the folder and its two archives, creating what is missing; throws `DropFolderError` when an
    /// archive is a symlink, not a folder, or not ours.
    public init(root: String) throws {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let rootFD = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { throw DropFolderError(path: root, problem: "cannot be opened: \(String(cString: strerror(errno)))") }
        // One taker at a time, whatever state folder each uses (a --simulate run, another store): the lock is on
        // the folder itself, held while this object lives, and released by the kernel if the process dies.
        guard flock(rootFD, LOCK_EX | LOCK_NB) == 0 else {
            close(rootFD)
            throw DropFolderBusy(path: root)
        }
        do {
            acceptedFD = try Self.openFolder("accepted", in: rootFD, path: root + "/accepted")
        } catch {
            close(rootFD)
            throw error
        }
        do {
            rejectedFD = try Self.openFolder("rejected", in: rootFD, path: root + "/rejected")
        } catch {
            close(rootFD)
            close(acceptedFD)
            throw error
        }
        self.root = root
        self.rootFD = rootFD
    }

    deinit {
        close(rootFD)
        close(acceptedFD)
        close(rejectedFD)
    }

    /// Moves an accepted file (a name in the folder) into today's archive; returns where it went.
    @discardableResult
    public func archiveAccepted(_ name: String, now: Date = Date()) throws -> String {
        let day = OutputLayout.day(of: now)
        let dayFD = try Self.openFolder(day, in: acceptedFD, path: acceptedRoot + "/" + day)
        defer { close(dayFD) }
        return try move(name, into: dayFD, path: acceptedRoot + "/" + day, besideReasons: false)
    }

    /// Moves a rejected file (a name in the folder) aside and writes why beside it; returns where it went.
    @discardableResult
    public func archiveRejected(_ name: String, reasons: [String], now: Date = Date()) throws -> String {
        let target = try move(name, into: rejectedFD, path: rejectedRoot, besideReasons: true)
        let text = "# \(LogSafe.escape(name)) was rejected at \(now.iso8601); nothing in it was run.\n"
            + "# Fix it and drop it into \(root) again (or run `kling-batch validate` on it first).\n"
            + reasons.joined(separator: "\n") + "\n"
        try writeFile((target as NSString).lastPathComponent + ".errors.txt", Data(text.utf8), in: rejectedFD, path: rejectedRoot)
        return target
    }

    /// A spec file of the folder, read in one open through the held folder descriptor (see `SpecFiles.readInside`).
    public func read(_ name: String) -> SpecFileRead {
        SpecFiles.readInside(name, in: root, folderFD: rootFD)
    }

    /// The reasons written for an invalid file: the same lines `kling-batch validate` prints.
    public static func reasons(for report: SpecReport) -> [String] {
        report.diagnostics.map(\.description) + ["invalid \(report.file): \(report.errors.count) problem\(report.errors.count == 1 ? "" : "s"); nothing in this file will run"]
    }

    /// Opens (creating when missing) the folder `name` in `parent`, refusing a symlink, a non-folder, or a folder
    /// owned by another user.
    static func openFolder(_ name: String, in parent: Int32, path: String) throws -> Int32 {
        if mkdirat(parent, name, 0o755) != 0 && errno != EEXIST {
            throw DropFolderError(path: path, problem: "cannot be created: \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw DropFolderError(path: path, problem: "cannot be examined: \(String(cString: strerror(errno)))")
        }
        switch info.st_mode & S_IFMT {
        case S_IFLNK:
            throw DropFolderError(path: path, problem: "is a symbolic link; it must be a real folder, because a link could send spec files and our writes anywhere. Replace it with a folder")
        case S_IFDIR:
            break
        default:
            throw DropFolderError(path: path, problem: "is not a folder")
        }
        guard info.st_uid == geteuid() else {
            throw DropFolderError(path: path, problem: "is owned by uid \(info.st_uid), not by the user kling-batch runs as (uid \(geteuid())); chown it, or remove it to have it made again")
        }
        let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw DropFolderError(path: path, problem: "cannot be opened: \(String(cString: strerror(errno)))") }
        return fd
    }

    /// Moves `name` into the folder `destination`, choosing `name-2.yaml`, `name-3.yaml`… when the name is taken,
    /// or when `besideReasons` and the name's `.errors.txt` is left from an earlier file.
    ///
    /// rename(2) would replace a file of the same name, so the file is linked to its new name (which fails when the
    /// name is taken, even in a race) and then unlinked from the old one. A symlink is moved as itself, never followed.
    private func move(_ name: String, into destination: Int32, path: String, besideReasons: Bool) throws -> String {
        let stem = (name as NSString).deletingPathExtension
        let ext = (name as NSString).pathExtension
        var index = 1
        while true {
            let candidate = index == 1 ? name : stem + "-\(index)" + (ext.isEmpty ? "" : "." + ext)
            index += 1
            if besideReasons && exists(candidate + ".errors.txt", in: destination) { continue }
            if linkat(rootFD, name, destination, candidate, 0) == 0 {
                unlinkat(rootFD, name, 0)
                return path + "/" + candidate
            }
            switch errno {
            case EEXIST:
                continue
            case EPERM, EXDEV, EMLINK, ENOTSUP:
                // A file system without hard links: rename, having made sure the name is free.
                if exists(candidate, in: destination) { continue }
                guard renameat(rootFD, name, destination, candidate) == 0 else { throw LocalWriteError.current("spec file", path: path + "/" + candidate) }
                return path + "/" + candidate
            default:
                throw LocalWriteError.current("spec file", path: path + "/" + candidate)
            }
        }
    }

    private func exists(_ name: String, in folder: Int32) -> Bool {
        var info = stat()
        return fstatat(folder, name, &info, AT_SYMLINK_NOFOLLOW) == 0
    }

    /// Writes `name` in `folder` atomically (temp file, fsync, renameat), never through a link.
    private func writeFile(_ name: String, _ data: Data, in folder: Int32, path: String) throws {
        let temporary = ".\(name).tmp-\(getpid())"
        unlinkat(folder, temporary, 0)
        let fd = openat(folder, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LocalWriteError.current("errors file", path: path + "/" + name) }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == data.count, synced, renameat(folder, temporary, folder, name) == 0 else {
            let failure = LocalWriteError.current("errors file", path: path + "/" + name)
            unlinkat(folder, temporary, 0)
            throw failure
        }
    }
}

/// Another process (a daemon, a `run --once`) is taking files from the drop folder now.
public struct DropFolderBusy: Error, CustomStringConvertible {
    public let path: String
    public var description: String {
        "another kling-batch is taking files from \(path) now (a daemon, or a run --once); run this again once it is done"
    }
}

/// The drop folder cannot be used safely; the daemon stops rather than write through it.
public struct DropFolderError: Error, CustomStringConvertible {
    public let path: String
    public let problem: String
    public var description: String { "\(path) \(problem)" }
}
