/// AVIF (an AV1 image in a HEIF container, ISO/IEC 23008-12): fal takes it, and its size sits in the primary
/// item's `ispe` property, found without decoding anything: `ftyp`, then `meta` → `pitm` (which item is the image),
/// `iprp` → `ipco` (the properties, numbered from 1) and `ipma` (which properties belong to which item).
extension ImageHeader {
    /// Whether `data` starts with an `ftyp` box that names an AVIF brand (major or compatible).
    static func isAVIF(_ data: [UInt8]) -> Bool {
        guard data.count >= 16, Array(data[4..<8]) == Array("ftyp".utf8) else { return false }
        let size = min(data.count, Int(bigEndian32(data, 0)))
        guard size >= 16 else { return false }
        let brands = stride(from: 8, to: size - 3, by: 4).filter { $0 != 12 }.map { String(decoding: data[$0..<$0 + 4], as: UTF8.self) }
        return brands.contains("avif") || brands.contains("avis")
    }

    /// The primary image's size from its `ispe` (swapped by a quarter-turn `irot`), or the first `ispe` when the
    /// file does not say which item is primary.
    static func avif(_ data: [UInt8]) throws(Problem) -> ImageHeader {
        // `meta` is a full box: its children start after 4 bytes of version and flags, which a hostile file may lack.
        guard let meta = AVIFBoxes.child("meta", in: data, 0..<data.count), meta.count >= 4,
              let iprp = AVIFBoxes.child("iprp", in: data, meta.lowerBound + 4..<meta.upperBound),
              let ipco = AVIFBoxes.child("ipco", in: data, iprp)
        else { throw .damaged("AVIF") }
        let properties = AVIFBoxes.children(in: data, ipco)
        var chosen = Array(properties.indices)
        if let pitm = AVIFBoxes.child("pitm", in: data, meta.lowerBound + 4..<meta.upperBound),
           let ipma = AVIFBoxes.child("ipma", in: data, iprp),
           let primary = AVIFBoxes.primaryItem(data, pitm),
           let associated = AVIFBoxes.associations(data, ipma)[primary] {
            chosen = associated.map { $0 - 1 }.filter { properties.indices.contains($0) }
        }
        var size: (Int, Int)?
        var quarterTurn = false
        for index in chosen {
            let (type, range) = properties[index]
            if type == "ispe", size == nil, range.count >= 12 {
                size = (Int(bigEndian32(data, range.lowerBound + 4)), Int(bigEndian32(data, range.lowerBound + 8)))
            }
            if type == "irot", range.count >= 1 { quarterTurn = data[range.lowerBound] & 1 == 1 }
        }
        guard let (width, height) = size, width > 0, height > 0 else { throw .damaged("AVIF") }
        return ImageHeader(format: .avif, width: quarterTurn ? height : width, height: quarterTurn ? width : height)
    }
}

/// Just enough ISO-BMFF box walking for `ImageHeader.avif`: ranges are box payloads, bounds always checked.
enum AVIFBoxes {
    /// The payloads of the boxes directly in `range`, with their types; stops at the first box that does not fit.
    static func children(in data: [UInt8], _ range: Range<Int>) -> [(String, Range<Int>)] {
        var found: [(String, Range<Int>)] = []
        var offset = range.lowerBound
        while offset + 8 <= range.upperBound {
            let size = Int(ImageHeader.bigEndian32(data, offset))
            let type = String(decoding: data[offset + 4..<offset + 8], as: UTF8.self)
            guard size >= 8, offset + size <= range.upperBound else { break }
            found.append((type, offset + 8..<offset + size))
            offset += size
        }
        return found
    }

    /// The payload of the first `type` box directly in `range`.
    static func child(_ type: String, in data: [UInt8], _ range: Range<Int>) -> Range<Int>? {
        guard range.lowerBound >= 0, range.lowerBound <= range.upperBound, range.upperBound <= data.count else { return nil }
        return children(in: data, range).first { $0.0 == type }?.1
    }

    /// `pitm`'s item id (16 bits in version 0, 32 after).
    static func primaryItem(_ data: [UInt8], _ pitm: Range<Int>) -> Int? {
        guard pitm.count >= 6 else { return nil }
        if data[pitm.lowerBound] == 0 { return Int(data[pitm.lowerBound + 4]) << 8 | Int(data[pitm.lowerBound + 5]) }
        guard pitm.count >= 8 else { return nil }
        return Int(ImageHeader.bigEndian32(data, pitm.lowerBound + 4))
    }

    /// `ipma`: each item's property indices (1-based; the "essential" bit dropped).
    static func associations(_ data: [UInt8], _ ipma: Range<Int>) -> [Int: [Int]] {
        guard ipma.count >= 8 else { return [:] }
        let version = data[ipma.lowerBound]
        let wideIndices = data[ipma.lowerBound + 3] & 1 == 1
        var offset = ipma.lowerBound + 8
        var items: [Int: [Int]] = [:]
        for _ in 0..<Int(ImageHeader.bigEndian32(data, ipma.lowerBound + 4)) {
            let idWidth = version < 1 ? 2 : 4
            guard offset + idWidth + 1 <= ipma.upperBound else { break }
            let id = idWidth == 2 ? Int(data[offset]) << 8 | Int(data[offset + 1]) : Int(ImageHeader.bigEndian32(data, offset))
            let count = Int(data[offset + idWidth])
            offset += idWidth + 1
            var indices: [Int] = []
            for _ in 0..<count {
                guard offset + (wideIndices ? 2 : 1) <= ipma.upperBound else { break }
                indices.append(wideIndices ? (Int(data[offset]) << 8 | Int(data[offset + 1])) & 0x7FFF : Int(data[offset]) & 0x7F)
                offset += wideIndices ? 2 : 1
            }
            items[id] = indices
        }
        return items
    }
}
