import Foundation
import KlingSpec
import Testing

@Suite("Image headers, read without decoding pixels")
struct ImageHeaderTests {
    @Test("each accepted format's size is read from its header", arguments: [
        (ImageFixtures.png(640, 360), ImageHeader(format: .png, width: 640, height: 360)),
        (ImageFixtures.jpeg(1920, 1080), ImageHeader(format: .jpeg, width: 1920, height: 1080)),
        (ImageFixtures.gif(500, 301), ImageHeader(format: .gif, width: 500, height: 301)),
        (ImageFixtures.webpVP8X(4000, 3000), ImageHeader(format: .webp, width: 4000, height: 3000)),
        (ImageFixtures.webpVP8L(512, 768), ImageHeader(format: .webp, width: 512, height: 768)),
        (ImageFixtures.webpVP8(800, 600), ImageHeader(format: .webp, width: 800, height: 600)),
        (ImageFixtures.avifImage(1280, 720), ImageHeader(format: .avif, width: 1280, height: 720)),
        (ImageFixtures.avifImage(1280, 720, compatible: false), ImageHeader(format: .avif, width: 1280, height: 720)),
        (ImageFixtures.avifImage(1280, 720, rotated: true), ImageHeader(format: .avif, width: 720, height: 1280)),
        (ImageFixtures.avifImage(1280, 720, primary: 1), ImageHeader(format: .avif, width: 64, height: 64)),
    ])
    func formats(bytes: [UInt8], expected: ImageHeader) throws {
        #expect(try ImageHeader.read(bytes) == expected)
    }

    @Test("an AVIF's size is its primary item's, not a thumbnail's; a cut or damaged AVIF is refused, never a crash")
    func avifEdges() {
        let image = ImageFixtures.avifImage(1000, 600)
        #expect(image.count > 100)
        for length in 0..<image.count {
            do {
                let header = try ImageHeader.read(Array(image.prefix(length)))
                #expect(header.format == .avif, "\(length)")
            } catch {
                #expect(error == .damaged("AVIF") || error == .notAnImage || error == .unsupported("HEIC"), "\(length): \(error)")
            }
        }
        // A meta box too short for its own version and flags (found by a review: it trapped).
        let ftyp = Array(image.prefix(32))
        for size in 8...12 {
            let shortMeta = ftyp + [0, 0, 0, UInt8(size)] + Array("meta".utf8) + [UInt8](repeating: 0, count: size - 8)
            #expect(throws: ImageHeader.Problem.self) { try ImageHeader.read(shortMeta) }
        }
        // Every byte after the ftyp set to 0xFF in turn: box sizes past the end, counts in the billions; each is
        // read or refused, never a crash or a hang.
        for index in 36..<image.count {
            var garbled = image
            garbled[index] = 0xFF
            if let header = try? ImageHeader.read(garbled) { #expect(header.format == .avif && header.width > 0 && header.height > 0) }
        }
    }

    @Test("the example images (real ffmpeg output) read correctly")
    func realFiles() throws {
        let refs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("jobs/refs")
        let expected: [String: ImageHeader] = [
            "ruin.png": .init(format: .png, width: 640, height: 360),
            "style-painting.jpg": .init(format: .jpeg, width: 400, height: 400),
            "hero-front.png": .init(format: .png, width: 360, height: 540),
            "tower.jpg": .init(format: .jpeg, width: 540, height: 960),
        ]
        for (name, header) in expected {
            let data = try Data(contentsOf: refs.appendingPathComponent(name))
            #expect(try ImageHeader.read(data) == header, "\(name)")
        }
    }

    @Test("refused formats are named", arguments: [
        (ImageFixtures.bmp, ImageHeader.Problem.unsupported("BMP")),
        (ImageFixtures.heic, .unsupported("HEIC")),
        (ImageFixtures.avif, .damaged("AVIF")),
        ([0x49, 0x49, 0x2A, 0x00, 1, 2, 3, 4], .unsupported("TIFF")),
        (Array("<?xml version=\"1.0\"?><svg width=\"10\"/>".utf8), .unsupported("SVG")),
        (Array("hello".utf8), .notAnImage),
        ([], .notAnImage),
        (ImageFixtures.damagedPNG, .damaged("PNG")),
        ([0xFF, 0xD8, 0xFF, 0xE0, 0x00], .damaged("JPEG")),
        (Array(ImageFixtures.webpVP8X(400, 400).prefix(20)), .damaged("WebP")),
    ])
    func refused(bytes: [UInt8], problem: ImageHeader.Problem) {
        #expect(throws: problem) { try ImageHeader.read(bytes) }
    }

    @Test("a JPEG whose size sits after long metadata segments")
    func jpegAfterMetadata() throws {
        var bytes: [UInt8] = [0xFF, 0xD8]
        for _ in 0..<20 { bytes += [0xFF, 0xE1, 0xFF, 0xFF] + [UInt8](repeating: 7, count: 0xFFFD) }
        bytes += Array(ImageFixtures.jpeg(700, 500).dropFirst(2))
        #expect(try ImageHeader.read(bytes) == ImageHeader(format: .jpeg, width: 700, height: 500))
    }
}
