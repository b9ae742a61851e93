import Foundation

/// Image files made byte by byte: only headers matter to the validator, so each is a few dozen bytes.
enum ImageFixtures {
    static func png(_ width: Int, _ height: Int) -> [UInt8] {
        [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8) + be32(width) + be32(height)
            + [8, 2, 0, 0, 0, 0, 0, 0, 0]
    }

    static func jpeg(_ width: Int, _ height: Int) -> [UInt8] {
        // SOI, an APP0 segment to skip, then SOF0 with the size.
        [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10] + Array("JFIF".utf8) + [0, 1, 1, 0, 0, 1, 0, 1, 0, 0]
            + [0xFF, 0xC0, 0x00, 0x11, 0x08] + be16(height) + be16(width) + [3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]
            + [0xFF, 0xD9]
    }

    static func gif(_ width: Int, _ height: Int) -> [UInt8] {
        Array("GIF89a".utf8) + le16(width) + le16(height) + [0, 0, 0]
    }

    static func webpVP8X(_ width: Int, _ height: Int) -> [UInt8] {
        riff(Array("VP8X".utf8) + le32(10) + [0, 0, 0, 0] + le24(width - 1) + le24(height - 1))
    }

    static func webpVP8L(_ width: Int, _ height: Int) -> [UInt8] {
        let bits = UInt32(width - 1) | UInt32(height - 1) << 14
        return riff(Array("VP8L".utf8) + le32(5) + [0x2F] + le32(Int(bits)) + [0, 0, 0, 0, 0])
    }

    static func webpVP8(_ width: Int, _ height: Int) -> [UInt8] {
        riff(Array("VP8 ".utf8) + le32(10) + [0, 0, 0, 0x9D, 0x01, 0x2A] + le16(width) + le16(height) + [0, 0])
    }

    static let bmp: [UInt8] = Array("BM".utf8) + [UInt8](repeating: 0, count: 60)
    /// An AVIF `ftyp` with nothing after it: the brand is right, the size is missing.
    static let avif: [UInt8] = [0, 0, 0, 0x1C] + Array("ftypavif".utf8) + [UInt8](repeating: 0, count: 20)
    static let heic: [UInt8] = [0, 0, 0, 0x18] + Array("ftypheic".utf8) + [UInt8](repeating: 0, count: 16)

    /// A box: size, type, payload.
    static func box(_ type: String, _ payload: [UInt8]) -> [UInt8] { be32(payload.count + 8) + Array(type.utf8) + payload }

    /// An AVIF still as encoders write it: `ftyp` (major brand `mif1`, AVIF as a compatible brand when `compatible`),
    /// `meta` with `pitm` naming item `primary`, `ipco` holding a thumbnail `ispe` first and the image's second, and
    /// `ipma` tying item 1 to the thumbnail and item 2 to the image (with `irot` when `rotated`).
    static func avifImage(_ width: Int, _ height: Int, primary: Int = 2, rotated: Bool = false, compatible: Bool = true) -> [UInt8] {
        let ftyp = box("ftyp", Array((compatible ? "mif1" : "avif").utf8) + be32(0) + Array("mif1miaf".utf8) + Array((compatible ? "avif" : "MA1B").utf8))
        let ispe = { (w: Int, h: Int) in box("ispe", [0, 0, 0, 0] + be32(w) + be32(h)) }
        var properties = ispe(64, 64) + ispe(width, height)
        if rotated { properties += box("irot", [1]) }
        let ipma = box("ipma", [0, 0, 0, 0] + be32(2) + be16(1) + [1, 0x81] + be16(2) + (rotated ? [2, 0x82, 0x03] : [1, 0x82]))
        let meta = box("meta", [0, 0, 0, 0] + box("hdlr", [UInt8](repeating: 0, count: 24)) + box("pitm", [0, 0, 0, 0] + be16(primary))
            + box("iprp", box("ipco", properties) + ipma))
        return ftyp + meta + box("mdat", [1, 2, 3])
    }
    static let damagedPNG: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("XXXX".utf8)

    private static func riff(_ chunk: [UInt8]) -> [UInt8] {
        Array("RIFF".utf8) + le32(chunk.count + 4) + Array("WEBP".utf8) + chunk + [0, 0, 0, 0]
    }
    private static func be32(_ value: Int) -> [UInt8] { [UInt8(value >> 24 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
    private static func be16(_ value: Int) -> [UInt8] { [UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
    private static func le16(_ value: Int) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF)] }
    private static func le24(_ value: Int) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value >> 16 & 0xFF)] }
    private static func le32(_ value: Int) -> [UInt8] { le16(value) + le16(value >> 16) }

    /// Lays out a spec folder with `img/` fixtures and an `outside/` sibling for escape tests; returns the spec folder.
    static func makeSpecFolder(in root: URL) throws -> URL {
        let specs = root.appendingPathComponent("specs")
        let images = specs.appendingPathComponent("img")
        let outside = root.appendingPathComponent("outside")
        for folder in [images, outside] { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        let files: [(URL, [UInt8])] = [
            (images.appendingPathComponent("ok.png"), png(400, 400)),
            (images.appendingPathComponent("ok.jpg"), jpeg(640, 360)),
            (images.appendingPathComponent("small.png"), png(299, 400)),
            (images.appendingPathComponent("wide.jpg"), jpeg(1000, 300)),
            (images.appendingPathComponent("text.png"), Array("hello, not an image".utf8)),
            (images.appendingPathComponent("picture.bmp"), bmp),
            (images.appendingPathComponent("photo.avif"), avif),
            (images.appendingPathComponent("damaged.png"), damagedPNG),
            (outside.appendingPathComponent("ok.png"), png(400, 400)),
        ]
        for (url, bytes) in files { try Data(bytes).write(to: url) }
        var big = png(400, 400)
        big += [UInt8](repeating: 0, count: 11 << 20 - big.count)
        try Data(big).write(to: images.appendingPathComponent("big.png"))
        try FileManager.default.createSymbolicLink(
            at: images.appendingPathComponent("link.png"), withDestinationURL: outside.appendingPathComponent("ok.png"))
        return specs
    }
}
