import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A write to our own disk that failed: the output tree, a manifest, the state folder.
///
/// Its errno decides what happens next. A full disk, a quota, a read-only remount, a permission taken away or an
/// I/O error says nothing about the job: the job waits until writing works again and never fails or spends an
/// attempt for it. Anything else (a path that is not a folder, say) is a fault of the job's own.
public struct LocalWriteError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was being written: `video`, `manifest`, `folder`.
    public var what: String
    public var path: String
    public var code: Int32

    public init(what: String, path: String, code: Int32) {
        self.what = what
        self.path = path
        self.code = code
    }

    /// The error of the last failed system call.
    public static func current(_ what: String, path: String) -> LocalWriteError {
        LocalWriteError(what: what, path: path, code: errno)
    }

    /// The errnos after which the same write may work later without anything changing in the job.
    public static let waitableCodes: Set<Int32> = [ENOSPC, EDQUOT, EACCES, EPERM, EROFS, EIO]

    /// The folder the write was in (the path itself when it was a folder).
    public var folder: String { what == "folder" ? path : (path as NSString).deletingLastPathComponent }

    /// Whether the job should wait for the disk instead of failing.
    public var isWaitable: Bool { Self.waitableCodes.contains(code) }

    /// `No space left on device`, as strerror says it.
    public var reason: String { String(cString: strerror(code)) }

    public var description: String { "cannot write the \(what) \(path): \(reason)" }
}

extension LocalWriteError {
    /// `mkdir -p` with the errno of what failed: Foundation's own errors lose it (a read-only file system comes
    /// back as a generic "file write unknown"), and the errno is what decides whether to wait.
    public static func makeFolders(_ path: String, mode: mode_t = 0o755) throws {
        var info = stat()
        if stat(path, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFDIR else { throw LocalWriteError(what: "folder", path: path, code: ENOTDIR) }
            return
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty && parent != path { try makeFolders(parent, mode: mode) }
        if mkdir(path, mode) != 0 && errno != EEXIST { throw LocalWriteError.current("folder", path: path) }
    }
}
