import Foundation

/// An image's format and pixel size, read from its header bytes without decoding any pixels.
public struct ImageHeader: Sendable, Hashable, Codable {
    public enum Format: String, Sendable, Codable, CaseIterable {
        case png, jpeg, webp, gif, avif

        /// The MIME type sent with an upload.
        public var contentType: String {
            switch self {
            case .png: return "image/png"
            case .jpeg: return "image/jpeg"
            case .webp: return "image/webp"
            case .gif: return "image/gif"
            case .avif: return "image/avif"
            }
        }

        /// The usual file extension, for upload names.
        public var fileExtension: String { self == .jpeg ? "jpg" : rawValue }
    }

    public var format: Format
    public var width: Int
    public var height: Int

    public init(format: Format, width: Int, height: Int) {
        self.format = format
        self.width = width
        self.height = height
    }

    /// Why bytes could not be read as an accepted image.
    public enum Problem: Error, Equatable, Sendable, CustomStringConvertible {
        /// A known image format that Kling does not take (BMP, TIFF, HEIC, SVG).
        case unsupported(String)
        /// Not an image at all (text, a PDF, random bytes).
        case notAnImage
        /// The right signature, but the header is cut short or inconsistent.
        case damaged(String)

        public var description: String {
            switch self {
            case .unsupported(let format):
                let article = "AEIOU".contains(format.prefix(1)) ? "an" : "a"
                return "\(article) \(format) image; only PNG, JPEG, WebP, GIF and AVIF are accepted"
            case .notAnImage: return "not an image (PNG, JPEG, WebP, GIF or AVIF expected)"
            case .damaged(let format): return "a damaged \(format) file whose header cannot be read"
            }
        }
    }

    /// Reads the header of `bytes`.
    public static func read(_ bytes: some Collection<UInt8>) throws(Problem) -> ImageHeader {
        let data = Array(bytes.prefix(1 << 20))
        if data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return try png(data) }
        if data.starts(with: [0xFF, 0xD8, 0xFF]) { return try jpeg(Array(bytes)) }
        if data.count >= 12, data.starts(with: Array("RIFF".utf8)), Array(data[8..<12]) == Array("WEBP".utf8) { return try webp(data) }
        if data.starts(with: Array("GIF87a".utf8)) || data.starts(with: Array("GIF89a".utf8)) { return try gif(data) }
        if isAVIF(data) { return try avif(data) }
        throw recognise(data)
    }

    /// Names the format of bytes we refuse, for a useful message.
    private static func recognise(_ data: [UInt8]) -> Problem {
        if data.starts(with: Array("BM".utf8)) && data.count > 26 { return .unsupported("BMP") }
        if data.starts(with: [0x49, 0x49, 0x2A, 0x00]) || data.starts(with: [0x4D, 0x4D, 0x00, 0x2A]) { return .unsupported("TIFF") }
        if data.count >= 12, Array(data[4..<8]) == Array("ftyp".utf8) {
            let brand = String(decoding: data[8..<12], as: UTF8.self)
            if brand.hasPrefix("hei") || brand.hasPrefix("mif") { return .unsupported("HEIC") }
        }
        let text = String(decoding: data.prefix(512), as: UTF8.self).lowercased()
        if text.contains("<svg") { return .unsupported("SVG") }
        return .notAnImage
    }

    private static func png(_ data: [UInt8]) throws(Problem) -> ImageHeader {
        guard data.count >= 24, Array(data[12..<16]) == Array("IHDR".utf8) else { throw .damaged("PNG") }
        let width = Int(bigEndian32(data, 16)), height = Int(bigEndian32(data, 20))
        guard width > 0, height > 0 else { throw .damaged("PNG") }
        return ImageHeader(format: .png, width: width, height: height)
    }

    private static func gif(_ data: [UInt8]) throws(Problem) -> ImageHeader {
        guard data.count >= 10 else { throw .damaged("GIF") }
        let width = Int(data[6]) | Int(data[7]) << 8, height = Int(data[8]) | Int(data[9]) << 8
        guard width > 0, height > 0 else { throw .damaged("GIF") }
        return ImageHeader(format: .gif, width: width, height: height)
    }

    private static func webp(_ data: [UInt8]) throws(Problem) -> ImageHeader {
        guard data.count >= 30 else { throw .damaged("WebP") }
        let chunk = String(decoding: data[12..<16], as: UTF8.self)
        var width = 0, height = 0
        switch chunk {
        case "VP8 ":
            guard data[23] == 0x9D, data[24] == 0x01, data[25] == 0x2A else { throw .damaged("WebP") }
            width = (Int(data[26]) | Int(data[27]) << 8) & 0x3FFF
            height = (Int(data[28]) | Int(data[29]) << 8) & 0x3FFF
        case "VP8L":
            guard data[20] == 0x2F else { throw .damaged("WebP") }
            let bits = UInt32(data[21]) | UInt32(data[22]) << 8 | UInt32(data[23]) << 16 | UInt32(data[24]) << 24
            width = Int(bits & 0x3FFF) + 1
            height = Int((bits >> 14) & 0x3FFF) + 1
        case "VP8X":
            width = (Int(data[24]) | Int(data[25]) << 8 | Int(data[26]) << 16) + 1
            height = (Int(data[27]) | Int(data[28]) << 8 | Int(data[29]) << 16) + 1
        default:
            throw .damaged("WebP")
        }
        guard width > 0, height > 0 else { throw .damaged("WebP") }
        return ImageHeader(format: .webp, width: width, height: height)
    }

    /// Walks JPEG segments to the first start-of-frame marker, which holds the size.
    private static func jpeg(_ data: [UInt8]) throws(Problem) -> ImageHeader {
        var index = 2
        while index + 3 < data.count {
            guard data[index] == 0xFF else { throw .damaged("JPEG") }
            var marker = data[index + 1]
            while marker == 0xFF, index + 2 < data.count {  // fill bytes
                index += 1
                marker = data[index + 1]
            }
            index += 2
            if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) { continue }  // no length
            guard index + 1 < data.count else { break }
            let length = Int(data[index]) << 8 | Int(data[index + 1])
            guard length >= 2 else { throw .damaged("JPEG") }
            let isFrame = (0xC0...0xCF).contains(marker) && ![0xC4, 0xC8, 0xCC].contains(marker)
            if isFrame {
                guard index + 6 < data.count else { break }
                let height = Int(data[index + 3]) << 8 | Int(data[index + 4])
                let width = Int(data[index + 5]) << 8 | Int(data[index + 6])
                guard width > 0, height > 0 else { throw .damaged("JPEG") }
                return ImageHeader(format: .jpeg, width: width, height: height)
            }
            if marker == 0xDA || marker == 0xD9 { break }  // scan data or end: no frame header before it
            index += length
        }
        throw .damaged("JPEG")
    }

    static func bigEndian32(_ data: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(data[offset]) << 24 | UInt32(data[offset + 1]) << 16 | UInt32(data[offset + 2]) << 8 | UInt32(data[offset + 3])
    }
}
