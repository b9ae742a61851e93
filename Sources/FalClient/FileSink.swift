import Crypto
import Foundation
import KlingCore
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A `.part` file being filled by a download, hashing as it goes so the video is never read twice.
struct FileSink {
    let path: FilePath
    private let descriptor: FileDescriptor
    private(set) var size: Int64
    private var hasher = SHA256()

    /// Opens (or creates) `path`; existing bytes are kept and hashed so a later run can resume the transfer.
    init(path: FilePath) throws {
        self.path = path
        self.descriptor = try FileDescriptor.open(path, .readWrite, options: [.create], permissions: [.ownerReadWrite, .groupRead, .otherRead])
        self.size = 0
        do {
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let count = try buffer.withUnsafeMutableBytes { try descriptor.read(into: $0) }
                if count == 0 { break }
                hasher.update(data: buffer[0..<count])
                size += Int64(count)
            }
        } catch {
            try? descriptor.close()
            throw error
        }
    }

    /// Drops everything written so far (the server ignored our Range request and is sending from byte 0).
    mutating func reset() throws {
        try descriptor.resize(to: 0)
        _ = try descriptor.seek(offset: 0, from: .start)
        size = 0
        hasher = SHA256()
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) throws {
        _ = try descriptor.writeAll(bytes)
        hasher.update(bufferPointer: bytes)
        size += Int64(bytes.count)
    }

    /// Flushes to disk and closes; returns the hex SHA-256 of everything written.
    consuming func finish() throws -> String {
        if fsync(descriptor.rawValue) != 0 { throw Errno(rawValue: errno) }
        try descriptor.close()
        return hasher.finalize().hexString
    }

    /// Closes without flushing, keeping the partial file for a later resume.
    consuming func abandon() {
        try? descriptor.close()
    }
}
