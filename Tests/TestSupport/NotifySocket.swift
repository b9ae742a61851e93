import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A unix datagram socket standing in for systemd's `$NOTIFY_SOCKET`: collects every message a child sends,
/// and lets a test wait for one without sleeping.
public final class NotifySocket: @unchecked Sendable {
    public let path: String
    private let descriptor: Int32
    private let lock = NSLock()
    private var received: [String] = []
    private var waiters: [(@Sendable (String) -> Bool, CheckedContinuation<String, Never>)] = []

    /// Binds a socket at `path` (which must not exist) and starts reading.
    public init(path: String) throws {
        self.path = path
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            Glibc.close(fd)
            throw HarnessError("bind \(path): errno \(errno)")
        }
        descriptor = fd
        Thread.detachNewThread { [self] in readLoop() }
    }

    private func readLoop() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count <= 0 {
                if count < 0 && errno == EINTR { continue }
                return
            }
            let message = String(decoding: buffer[0..<count], as: UTF8.self)
            let ready = lock.withLock { () -> [(CheckedContinuation<String, Never>, String)] in
                received.append(message)
                var ready: [(CheckedContinuation<String, Never>, String)] = []
                waiters.removeAll { matches, continuation in
                    guard matches(message) else { return false }
                    ready.append((continuation, message))
                    return true
                }
                return ready
            }
            for (continuation, message) in ready { continuation.resume(returning: message) }
        }
    }

    /// Every message so far, in order.
    public var messages: [String] { lock.withLock { received } }

    /// The first message (already received or still to come) that starts with `prefix`.
    public func first(startingWith prefix: String) async -> String {
        await first { $0.hasPrefix(prefix) }
    }

    /// The first message (already received or still to come) for which `matches` holds.
    public func first(where matches: @escaping @Sendable (String) -> Bool) async -> String {
        await withCheckedContinuation { continuation in
            let found = lock.withLock { () -> String? in
                if let message = received.first(where: matches) { return message }
                waiters.append((matches, continuation))
                return nil
            }
            if let found { continuation.resume(returning: found) }
        }
    }

    /// Waits for the `count`-th message that starts with `prefix`.
    public func message(startingWith prefix: String, count: Int) async -> String {
        while true {
            let matching = messages.filter { $0.hasPrefix(prefix) }
            if matching.count >= count { return matching[count - 1] }
            _ = await next(startingWith: prefix, after: matching.count)
        }
    }

    /// Waits for one more message with `prefix` than `seen`.
    private func next(startingWith prefix: String, after seen: Int) async -> String {
        await withCheckedContinuation { continuation in
            let found = lock.withLock { () -> String? in
                let matching = received.filter { $0.hasPrefix(prefix) }
                if matching.count > seen { return matching[seen] }
                waiters.append(({ $0.hasPrefix(prefix) }, continuation))
                return nil
            }
            if let found { continuation.resume(returning: found) }
        }
    }

    /// Stops reading and removes the socket file.
    public func close() {
        shutdown(descriptor, Int32(SHUT_RDWR))
        Glibc.close(descriptor)
        unlink(path)
    }
}
