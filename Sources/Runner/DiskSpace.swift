import Foundation
import KlingCore

#if canImport(Glibc)
import Glibc
#endif

/// Our own disks, as the runner needs to know them: room left, and whether a write lands.
public enum DiskSpace {
    /// Bytes an unprivileged writer may still use on the filesystem holding `path` (statvfs `f_bavail`).
    public static func available(at path: String) -> Int64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    /// Writes, syncs and removes a hidden probe file of `bytes` in `folder`; throws the `LocalWriteError` that a
    /// video written there now would meet. The folder is created if missing.
    public static func probeWrite(in folder: String, bytes: Int = 256 << 10) throws {
        try LocalWriteError.makeFolders(folder)
        let path = folder + "/.kling-batch-probe-\(getpid())"
        let chunk = [UInt8](repeating: 0, count: min(bytes, 64 << 10))
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LocalWriteError.current("probe file", path: path) }
        defer {
            close(fd)
            unlink(path)
        }
        var written = 0
        while written < bytes {
            let count = chunk.withUnsafeBytes { write(fd, $0.baseAddress, min($0.count, bytes - written)) }
            guard count > 0 else { throw LocalWriteError.current("probe file", path: path) }
            written += count
        }
        guard fsync(fd) == 0 else { throw LocalWriteError.current("probe file", path: path) }
    }

    /// `64 MB`, `1.5 GB`: sizes as people read them.
    public static func describe(_ bytes: Int64) -> String {
        let units: [(String, Double)] = [("GB", 1e9), ("MB", 1e6), ("kB", 1e3)]
        for (unit, scale) in units where Double(bytes) >= scale {
            let value = Double(bytes) / scale
            return (value >= 10 ? String(Int(value.rounded())) : String(format: "%.1f", value)) + " " + unit
        }
        return "\(bytes) bytes"
    }

    /// Parses `64MB`, `1GB`, `512k`, `0`, or plain bytes; nil when it is not a size.
    public static func parseSize(_ text: String) -> Int64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased().replacingOccurrences(of: " ", with: "")
        let units: [(String, Double)] = [("gib", 1_073_741_824), ("mib", 1_048_576), ("kib", 1024), ("gb", 1e9), ("mb", 1e6), ("kb", 1e3),
                                         ("g", 1e9), ("m", 1e6), ("k", 1e3), ("b", 1)]
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            guard let value = Double(trimmed.dropLast(suffix.count)), value >= 0, value.isFinite else { return nil }
            return Int64(value * scale)
        }
        guard let value = Int64(trimmed), value >= 0 else { return nil }
        return value
    }
}
