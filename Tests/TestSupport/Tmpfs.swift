import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A small tmpfs mounted for one test, to make our own disk fail for real: fill it, shrink or grow it, remount
/// it read-only. Needs root (CI runs as root); tests that need one are skipped elsewhere with a clear reason.
/// Always unmount it (`defer { tmpfs.unmount() }`).
public final class Tmpfs: @unchecked Sendable {
    public let path: String
    private var mounted = true

    /// Whether this process may mount file systems.
    public static var isAvailable: Bool { geteuid() == 0 }

    /// Mounts a tmpfs of `megabytes` at `path` (created if missing).
    public init(at path: String, megabytes: Int) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        self.path = path
        try Self.run(["mount", "-t", "tmpfs", "-o", "size=\(megabytes)m,mode=0755", "kbtest", path])
    }

    /// Changes the size in place, keeping its files: growing it is "freeing space".
    public func resize(megabytes: Int) throws { try Self.run(["mount", "-o", "remount,size=\(megabytes)m", path]) }

    public func remountReadOnly() throws { try Self.run(["mount", "-o", "remount,ro", path]) }
    public func remountWritable() throws { try Self.run(["mount", "-o", "remount,rw", path]) }

    /// Writes a filler file until the file system is full, leaving `bytes` free at most; returns its path.
    @discardableResult
    public func fill(leaving bytes: Int64 = 0, name: String = ".filler") throws -> String {
        let filler = path + "/" + name
        let fd = open(filler, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        guard fd >= 0 else { throw HarnessError("cannot create \(filler): errno \(errno)") }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0xAB, count: 64 << 10)
        while true {
            var info = statvfs()
            guard statvfs(path, &info) == 0 else { break }
            let free = Int64(info.f_bavail) * Int64(info.f_frsize)
            if free <= bytes { break }
            let size = Int(min(Int64(chunk.count), free - bytes))
            if chunk.withUnsafeBytes({ write(fd, $0.baseAddress, size) }) <= 0 { break }
        }
        fsync(fd)
        return filler
    }

    /// Bytes free now.
    public var available: Int64 {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return 0 }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    /// Unmounts (lazily, so a process still holding a file cannot keep it mounted).
    public func unmount() {
        guard mounted else { return }
        mounted = false
        try? Self.run(["umount", "-l", path])
    }

    deinit { unmount() }

    static func run(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        guard try process.runToEnd() == 0 else {
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw HarnessError("\(arguments.joined(separator: " ")) failed: \(text)")
        }
    }
}
