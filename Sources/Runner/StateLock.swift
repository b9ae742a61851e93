import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Exclusive ownership of a state folder, so a second daemon or `run --once` refuses to start instead of
/// submitting the same jobs. An flock(2) on `<state>/kling-batch.lock`, released by the kernel when the
/// process dies, however it dies.
public final class StateLock: Sendable {
    public let path: String
    private let descriptor: Int32

    /// Another process holds the lock.
    public struct Held: Error, CustomStringConvertible {
        public let path: String
        public let holder: String?
        public var description: String {
            let who = holder.map { "kling-batch (pid \($0))" } ?? "another kling-batch"
            return "\(who) is already running on \((path as NSString).deletingLastPathComponent); stop it first, or use another --state-dir (lock: \(path))"
        }
    }

    /// Takes the lock or throws `Held` naming the holder's pid.
    public init(stateDirectory: String, purpose: String) throws {
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        path = (stateDirectory as NSString).appendingPathComponent("kling-batch.lock")
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            var buffer = [UInt8](repeating: 0, count: 256)
            let count = pread(fd, &buffer, buffer.count, 0)
            close(fd)
            let text = count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : ""
            let pid = text.split(separator: " ").first.map(String.init)
            throw Held(path: path, holder: pid.flatMap { Int($0) != nil ? $0 : nil })
        }
        let note = Array("\(getpid()) \(purpose)\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, note, note.count, 0)
        descriptor = fd
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }

    /// Who holds the lock on `stateDirectory` right now (pid and purpose), or nil when nobody does.
    /// The flock is tried, not just the file read, so a stale pid from a dead process is never trusted.
    public static func holder(of stateDirectory: String) -> (pid: Int32, purpose: String)? {
        let path = (stateDirectory as NSString).appendingPathComponent("kling-batch.lock")
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return nil
        }
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = pread(fd, &buffer, buffer.count, 0)
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = text.split(separator: " ", maxSplits: 1)
        guard let first = parts.first, let pid = Int32(first) else { return nil }
        return (pid, parts.count > 1 ? String(parts[1]) : "")
    }

    /// Tells a daemon running on `stateDirectory` to look at the store and the jobs folder now (SIGUSR1).
    /// Returns its pid when there is one. Never signals a `run --once`, for which SIGUSR1 would be fatal.
    @discardableResult
    public static func wakeDaemon(of stateDirectory: String) -> Int32? {
        guard let holder = holder(of: stateDirectory), holder.purpose == "daemon" else { return nil }
        return kill(holder.pid, SIGUSR1) == 0 ? holder.pid : nil
    }
}
