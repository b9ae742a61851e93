import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A spec file of a folder read in one open, so what is judged is what is read.
///
/// Checking a name (lstat, realpath) and then reading it by path again leaves a window in which the name can be
/// swapped for a link to anywhere; the bytes read would then be those of another file, and end up in an errors
/// file or a log. So the file is opened once, following a link if there is one, and the kernel is asked where the
/// open file really is (`/proc/self/fd/N`): its bytes are read only when that is inside the folder.
public enum SpecFileRead: Sendable, Equatable {
    case contents([UInt8])
    /// Not read: a link out of the folder (or to nothing), or not a regular file.
    case refused(String)
    /// Gone before it could be opened.
    case gone
}

extension SpecFiles {
    /// Reads `name` of `folder` (opened relative to `folderFD` when given), at most `limit` bytes plus one.
    public static func readInside(_ name: String, in folder: String, folderFD: Int32? = nil, limit: Int = 1 << 20) -> SpecFileRead {
        let fd = folderFD.map { openat($0, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC) } ?? open(folder + "/" + name, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            // Nothing there any more, or a link to nothing (lstat finds the link itself).
            var info = stat()
            return lstat(folder + "/" + name, &info) != 0 ? .gone : .refused(linkRefusal)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return .refused(linkRefusal) }
        guard let root = realPath(folder), isInside(fd, name: name, folder: folder, root: root, info: info) else { return .refused(linkRefusal) }
        return .contents(readAll(fd, limit: limit))
    }

    /// Everything `fd` holds, up to `limit` bytes plus one (so a caller can tell a file that is too large).
    static func readAll(_ fd: Int32, limit: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while bytes.count <= limit {
            let count = read(fd, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return bytes
    }

    /// Whether the open file `fd` lies inside the folder whose real path is `root`.
    static func isInside(_ fd: Int32, name: String, folder: String, root: String, info: stat) -> Bool {
        if let opened = readLink("/proc/self/fd/\(fd)") {
            return opened.hasPrefix(root == "/" ? "/" : root + "/")
        }
        // Without /proc: only a plain file (no link) that is still the very one opened.
        var named = stat()
        return lstat(folder + "/" + name, &named) == 0 && (named.st_mode & S_IFMT) == S_IFREG
            && named.st_dev == info.st_dev && named.st_ino == info.st_ino
    }

    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
