import Crypto
import Foundation
import KlingCore
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A hidden `.part` file being filled by a download, hashing as it goes so the video is never read twice.
///
/// Every failure to write our own disk is a `LocalWriteError` with its errno, never a network error: a full or
/// read-only disk makes the job wait for the disk, where a network error would spend one of its tries.
struct FileSink {
    let path: FilePath
    private let descriptor: FileDescriptor
    private(set) var size: Int64
    private var hasher = SHA256()

    /// Opens (or creates) `path`; existing bytes are kept and hashed so a later run can resume the transfer.
    init(path: FilePath) throws {
        self.path = path
        do {
            self.descriptor = try FileDescriptor.open(
                path, .readWrite, options: [.create, .noFollow], permissions: [.ownerReadWrite, .groupRead, .otherRead])
        } catch let error as Errno {
            throw LocalWriteError(what: "video", path: path.string, code: error.rawValue)
        }
        self.size = 0
        do {
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let count = try buffer.withUnsafeMutableBytes { try descriptor.read(into: $0) }
                if count == 0 { break }
                hasher.update(data: buffer[0..<count])
                size += Int64(count)
            }
        } catch let error as Errno {
            try? descriptor.close()
            throw LocalWriteError(what: "video", path: path.string, code: error.rawValue)
        }
    }

    /// Drops everything written so far (the server ignored our Range request and is sending from byte 0).
    mutating func reset() throws {
        try local { try descriptor.resize(to: 0) }
        _ = try local { try descriptor.seek(offset: 0, from: .start) }
        size = 0
        hasher = SHA256()
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) throws {
        _ = try local { try descriptor.writeAll(bytes) }
        hasher.update(bufferPointer: bytes)
        size += Int64(bytes.count)
    }

    /// Flushes to disk and closes; returns the hex SHA-256 of everything written.
    consuming func finish() throws -> String {
        if fsync(descriptor.rawValue) != 0 {
            let code = errno
            try? descriptor.close()
            throw LocalWriteError(what: "video", path: path.string, code: code)
        }
        try local { try descriptor.close() }
        return hasher.finalize().hexString
    }

    /// Runs a file call, turning its errno into a `LocalWriteError` for this file.
    private func local<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as Errno {
            throw LocalWriteError(what: "video", path: path.string, code: error.rawValue)
        }
    }

    /// Closes without flushing, keeping the partial file for a later resume.
    consuming func abandon() {
        try? descriptor.close()
    }
}
