import Foundation

/// Random access to an MP4's bytes, so one parser reads a seeked file and a buffer in memory alike.
protocol MP4ByteSource {
    /// The absolute offset just past the last byte.
    var end: Int { get }
    /// Exactly `count` bytes from absolute `offset`; throws when fewer are there.
    func bytes(at offset: Int, count: Int) throws -> [UInt8]
}

/// Bytes already in memory; `origin` is the absolute offset of the first byte, so errors name file offsets.
struct MP4MemorySource: MP4ByteSource {
    let storage: [UInt8]
    let origin: Int

    init(_ storage: [UInt8], origin: Int = 0) {
        self.storage = storage
        self.origin = origin
    }

    var end: Int { origin + storage.count }

    func bytes(at offset: Int, count: Int) throws -> [UInt8] {
        guard offset >= origin, count >= 0, offset + count <= end else {
            throw MP4Summary.ReadError.truncatedBox(type: "?", offset: offset)
        }
        return Array(storage[(offset - origin)..<(offset - origin + count)])
    }
}

/// A file read by seeking: only the headers and the moov box are ever read, however large the mdat is.
final class MP4FileSource: MP4ByteSource {
    private let handle: FileHandle
    private let path: String
    let end: Int

    init(path: String) throws {
        self.path = path
        do {
            handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
            end = Int(try handle.seekToEnd())
        } catch {
            throw MP4Summary.ReadError.unreadable(path: path, reason: error.localizedDescription)
        }
    }

    deinit { try? handle.close() }

    func bytes(at offset: Int, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset + count <= end else {
            throw MP4Summary.ReadError.truncatedBox(type: "?", offset: offset)
        }
        var collected: [UInt8] = []
        collected.reserveCapacity(count)
        do {
            try handle.seek(toOffset: UInt64(offset))
            while collected.count < count {
                guard let data = try handle.read(upToCount: count - collected.count), !data.isEmpty else { break }
                collected.append(contentsOf: data)
            }
        } catch {
            throw MP4Summary.ReadError.unreadable(path: path, reason: error.localizedDescription)
        }
        // The file shrank while being read: its boxes now end early.
        guard collected.count == count else { throw MP4Summary.ReadError.truncatedBox(type: "?", offset: offset) }
        return collected
    }
}

/// One box's place in the file: where it starts, how long its header is, and where it ends.
struct MP4BoxHeader: Equatable {
    let type: String
    let offset: Int
    let headerSize: Int
    let size: Int

    var bodyStart: Int { offset + headerSize }
    var end: Int { offset + size }
    var bodyCount: Int { size - headerSize }

    /// Reads the header at `offset` of a box that must end by `limit`: a 32-bit size, a 64-bit `largesize` when
    /// the size is 1, or "to the end of the container" when it is 0.
    static func read(from source: some MP4ByteSource, at offset: Int, limit: Int) throws -> MP4BoxHeader {
        guard offset + 8 <= limit else { throw MP4Summary.ReadError.truncatedBox(type: "?", offset: offset) }
        let start = try source.bytes(at: offset, count: 8)
        let type = fourCC(start, at: 4)
        var size = Int(bigEndian(start, at: 0, count: 4))
        var headerSize = 8
        if size == 1 {
            guard offset + 16 <= limit else { throw MP4Summary.ReadError.truncatedBox(type: type, offset: offset) }
            let large = try source.bytes(at: offset + 8, count: 8)
            let value = bigEndian(large, at: 0, count: 8)
            guard value <= UInt64(Int.max) else { throw MP4Summary.ReadError.truncatedBox(type: type, offset: offset) }
            size = Int(value)
            headerSize = 16
        } else if size == 0 {
            size = limit - offset
        }
        guard size >= headerSize, size <= limit - offset else {
            throw MP4Summary.ReadError.truncatedBox(type: type, offset: offset)
        }
        return MP4BoxHeader(type: type, offset: offset, headerSize: headerSize, size: size)
    }

    /// The boxes directly inside this one, read from `source`.
    func children(in source: some MP4ByteSource) throws -> [MP4BoxHeader] {
        try Self.sequence(in: source, from: bodyStart, to: end)
    }

    /// The boxes one after another from `start` to `limit`; every byte must belong to a whole box.
    static func sequence(in source: some MP4ByteSource, from start: Int, to limit: Int) throws -> [MP4BoxHeader] {
        var found: [MP4BoxHeader] = []
        var offset = start
        while offset < limit {
            let header = try read(from: source, at: offset, limit: limit)
            found.append(header)
            offset = header.end
        }
        return found
    }

    /// A big-endian unsigned integer of `count` bytes at `index`.
    static func bigEndian(_ bytes: [UInt8], at index: Int, count: Int) -> UInt64 {
        bytes[index..<(index + count)].reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Four bytes as a box or handler type; bytes outside printable ASCII show as `?`.
    static func fourCC(_ bytes: [UInt8], at index: Int) -> String {
        String(bytes[index..<(index + 4)].map { (0x20...0x7E).contains($0) ? Character(UnicodeScalar($0)) : "?" })
    }
}
