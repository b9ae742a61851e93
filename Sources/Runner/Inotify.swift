import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// inotify(7) on one folder: the file names that were closed after writing or moved in, plus overflows.
///
/// A blocking reader on its own thread waits in poll(2) on the inotify descriptor and a wake-up pipe, so it
/// costs nothing while nothing happens and stops at once when asked.
public final class Inotify: @unchecked Sendable {
    /// What the kernel reported.
    public enum Event: Sendable, Equatable {
        /// A writer closed the file (it may write again: wait for it to settle).
        case closedAfterWrite(String)
        /// The file was renamed into the folder: complete at once.
        case movedIn(String)
        /// The kernel's queue overflowed: events were lost, rescan.
        case overflow
    }

    public let folder: String
    private let descriptor: Int32
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let lock = NSLock()
    private var closed = false

    /// Watches `folder` (not its subfolders).
    public init(folder: String) throws {
        self.folder = folder
        let fd = inotify_init1(Int32(IN_CLOEXEC))
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let mask = UInt32(IN_CLOSE_WRITE) | UInt32(IN_MOVED_TO) | UInt32(IN_ONLYDIR)
        guard inotify_add_watch(fd, folder, mask) >= 0 else {
            let code = errno
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else {
            let code = errno
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
        for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        descriptor = fd
        wakeRead = pipeEnds[0]
        wakeWrite = pipeEnds[1]
    }

    /// The events, until `stop()`; read on a dedicated thread so no cooperative thread ever blocks.
    public func events() -> AsyncStream<Event> {
        AsyncStream { continuation in
            let thread = Thread { [self] in
                readLoop(continuation)
                continuation.finish()
            }
            thread.name = "inotify \(folder)"
            thread.start()
            continuation.onTermination = { [self] _ in stop() }
        }
    }

    /// Wakes the reader and releases the descriptors. Safe to call more than once.
    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return }
        closed = true
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private func readLoop(_ continuation: AsyncStream<Event>.Continuation) {
        defer {
            close(descriptor)
            close(wakeRead)
            close(wakeWrite)
        }
        let bufferSize = 64 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 8)
        defer { buffer.deallocate() }
        var fds = [pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        while true {
            fds[0].revents = 0
            fds[1].revents = 0
            let ready = poll(&fds, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds[1].revents != 0 { return }
            guard fds[0].revents & Int16(POLLIN) != 0 else { continue }
            let count = read(descriptor, buffer, bufferSize)
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return
            }
            for event in Self.parse(UnsafeRawBufferPointer(start: buffer, count: count)) { continuation.yield(event) }
        }
    }

    /// Decodes a buffer of `struct inotify_event` records.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> [Event] {
        var events: [Event] = []
        var offset = 0
        let header = MemoryLayout<inotify_event>.size
        while offset + header <= bytes.count {
            let mask = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
            let length = Int(bytes.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
            let nameBytes = bytes[(offset + header)..<min(bytes.count, offset + header + length)]
            let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
            if mask & UInt32(IN_Q_OVERFLOW) != 0 {
                events.append(.overflow)
            } else if mask & UInt32(IN_ISDIR) == 0, !name.isEmpty {
                if mask & UInt32(IN_MOVED_TO) != 0 { events.append(.movedIn(name)) }
                if mask & UInt32(IN_CLOSE_WRITE) != 0 { events.append(.closedAfterWrite(name)) }
            }
            offset += header + length
        }
        return events
    }
}
