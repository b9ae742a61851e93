import Foundation

/// What a downloaded MP4 says about itself: how long it plays and how large it shows.
public struct MP4Summary: Sendable, Equatable {
    /// mvhd duration / mvhd timescale.
    public var durationSeconds: Double
    /// Display width from the first video track's tkhd (16.16 fixed point, integer part), 0 if none.
    public var width: Int
    /// Display height, as `width`.
    public var height: Int

    public init(durationSeconds: Double, width: Int, height: Int) {
        self.durationSeconds = durationSeconds
        self.width = width
        self.height = height
    }

    /// Why a file could not be summarised, in words an operator can act on.
    public enum ReadError: Error, Equatable, CustomStringConvertible {
        /// The first bytes are not an MP4 box (an HTML error page, a PNG, an empty file).
        case notMP4
        /// The boxes are whole but none of the top-level ones is `moov`.
        case noMoov
        /// The `moov` has no usable `mvhd` (missing, or a timescale of 0).
        case noMvhd
        /// A box is cut short or claims to run past the end of its container (usually a truncated download).
        case truncatedBox(type: String, offset: Int)
        /// The file could not be opened or read at all.
        case unreadable(path: String, reason: String)

        public var description: String {
            switch self {
            case .notMP4: return "not an MP4 file: it does not start with an MP4 box"
            case .noMoov: return "the MP4 has no moov box (its index), so it cannot be played"
            case .noMvhd: return "the MP4's moov box has no usable mvhd (movie header) box"
            case .truncatedBox(let type, let offset):
                return "the MP4 is truncated: the \(type) box at byte \(offset) runs past the end of what contains it"
            case .unreadable(let path, let reason): return "cannot read \(path): \(reason)"
            }
        }
    }

    /// Reads only box headers and the moov box from a file (seeking over mdat, which may be GBs, before or after
    /// moov).
    public static func read(fileAt path: String) throws -> MP4Summary {
        try read(from: MP4FileSource(path: path))
    }

    /// The same, from bytes in memory.
    public static func read(_ bytes: [UInt8]) throws -> MP4Summary {
        try read(from: MP4MemorySource(bytes))
    }

    /// Top-level boxes a file may start with; anything else is not an MP4 (or a QuickTime file).
    static let leadingTypes: Set<String> = ["ftyp", "styp", "moov", "mdat", "free", "skip", "wide", "pdin", "uuid", "sidx", "meta"]

    /// Walks the top-level box headers (so a file truncated anywhere is noticed), then parses the moov in memory.
    static func read(from source: some MP4ByteSource) throws -> MP4Summary {
        guard source.end >= 8 else { throw ReadError.notMP4 }
        guard leadingTypes.contains(MP4BoxHeader.fourCC(try source.bytes(at: 0, count: 8), at: 4)) else {
            throw ReadError.notMP4
        }
        let topLevel = try MP4BoxHeader.sequence(in: source, from: 0, to: source.end)
        guard let moov = topLevel.first(where: { $0.type == "moov" }) else { throw ReadError.noMoov }
        let moovBytes = MP4MemorySource(try source.bytes(at: moov.offset, count: moov.size), origin: moov.offset)
        return try summarize(moov: moov, in: moovBytes)
    }

    /// The duration from mvhd and the display size of the first video track.
    static func summarize(moov: MP4BoxHeader, in source: MP4MemorySource) throws -> MP4Summary {
        let children = try moov.children(in: source)
        guard let mvhd = children.first(where: { $0.type == "mvhd" }) else { throw ReadError.noMvhd }
        let header = try source.bytes(at: mvhd.bodyStart, count: mvhd.bodyCount)
        // version 0: 4-byte times, timescale at 12, duration at 16; version 1: 8-byte times, timescale at 20.
        let isVersion1 = header.first == 1
        let needed = isVersion1 ? 32 : 20
        guard header.count >= needed else { throw ReadError.truncatedBox(type: "mvhd", offset: mvhd.offset) }
        let timescale = MP4BoxHeader.bigEndian(header, at: isVersion1 ? 20 : 12, count: 4)
        let duration = MP4BoxHeader.bigEndian(header, at: isVersion1 ? 24 : 16, count: isVersion1 ? 8 : 4)
        guard timescale > 0 else { throw ReadError.noMvhd }
        var fallback: (Int, Int)?
        for trak in children where trak.type == "trak" {
            let (size, handler) = try describeTrack(trak, in: source)
            let shows = size.0 > 0 && size.1 > 0
            if handler == "vide" && shows {
                return MP4Summary(durationSeconds: Double(duration) / Double(timescale), width: size.0, height: size.1)
            }
            if fallback == nil && shows { fallback = size }
        }
        return MP4Summary(
            durationSeconds: Double(duration) / Double(timescale), width: fallback?.0 ?? 0, height: fallback?.1 ?? 0)
    }

    /// A track's tkhd display size (0×0 when absent) and its mdia/hdlr handler type ("vide", "soun", …).
    static func describeTrack(_ trak: MP4BoxHeader, in source: MP4MemorySource) throws -> ((Int, Int), String?) {
        let children = try trak.children(in: source)
        var size = (0, 0)
        if let tkhd = children.first(where: { $0.type == "tkhd" }) {
            let body = try source.bytes(at: tkhd.bodyStart, count: tkhd.bodyCount)
            // Width and height follow 76 bytes of version 0 fields or 88 of version 1 ones.
            let widthAt = body.first == 1 ? 88 : 76
            guard body.count >= widthAt + 8 else { throw ReadError.truncatedBox(type: "tkhd", offset: tkhd.offset) }
            size = (
                Int(MP4BoxHeader.bigEndian(body, at: widthAt, count: 4) >> 16),
                Int(MP4BoxHeader.bigEndian(body, at: widthAt + 4, count: 4) >> 16)
            )
        }
        var handler: String?
        if let mdia = children.first(where: { $0.type == "mdia" }),
            let hdlr = try mdia.children(in: source).first(where: { $0.type == "hdlr" })
        {
            let body = try source.bytes(at: hdlr.bodyStart, count: hdlr.bodyCount)
            guard body.count >= 12 else { throw ReadError.truncatedBox(type: "hdlr", offset: hdlr.offset) }
            handler = MP4BoxHeader.fourCC(body, at: 8)
        }
        return (size, handler)
    }
}
