import Foundation
import NIOCore
import Synchronization

/// The playable MP4s the emulator serves as results, one per aspect ratio, embedded in the binary (see
/// `VideoAsset+Embedded.swift`): nothing to find at run time, wherever the binary was installed.
enum VideoAsset {
    /// How long each embedded clip plays; a result of N seconds plays the clip N / `clipSeconds` times.
    static let clipSeconds = 1
    /// The longest result video made, so that a knob or a stray input cannot make the emulator build huge tables.
    static let longestSeconds = 60

    /// The base MP4 for an aspect ratio; 16:9 for anything unknown.
    static func base(for aspectRatio: String) -> ByteBuffer {
        switch canonical(aspectRatio) {
        case "9:16": return portrait
        case "1:1": return square
        default: return landscape
        }
    }

    /// The aspect ratios that have a clip of their own; anything else is served as 16:9.
    static func canonical(_ aspectRatio: String) -> String {
        ["9:16", "1:1"].contains(aspectRatio) ? aspectRatio : "16:9"
    }

    /// Built result videos by aspect ratio and seconds: the same for every request, so each is built once.
    private static let built = Mutex<[String: ByteBuffer]>([:])

    /// The base clip for `aspectRatio` looped to play `seconds` seconds (clamped to 1…`longestSeconds`).
    static func video(for aspectRatio: String, seconds: Int) -> ByteBuffer {
        let seconds = min(max(seconds, clipSeconds), longestSeconds)
        let key = "\(canonical(aspectRatio)) \(seconds)"
        if let cached = built.withLock({ $0[key] }) { return cached }
        let clip = base(for: aspectRatio)
        let made: ByteBuffer
        do {
            made = ByteBuffer(bytes: try VideoLooper.loop(Array(clip.readableBytesView), times: seconds / clipSeconds))
        } catch {
            preconditionFailure("the embedded emulator video cannot be looped (\(error)); run scripts/make-fixtures")
        }
        built.withLock { $0[key] = made }
        return made
    }

    static let landscape = decode(landscapeBase64)
    static let portrait = decode(portraitBase64)
    static let square = decode(squareBase64)

    private static func decode(_ text: String) -> ByteBuffer {
        let data = Data(base64Encoded: text, options: .ignoreUnknownCharacters) ?? Data()
        precondition(data.count > 8, "the embedded emulator video is damaged; run scripts/make-fixtures")
        return ByteBuffer(bytes: data)
    }
}

/// One request's result video: the base MP4 looped to the request's duration, followed by a top-level `free` box
/// that names the request and pads the file to the configured size. Players skip `free` boxes, so the file stays
/// playable at any size, and each request's file is distinct.
struct VideoLayout: Sendable {
    /// The playable MP4, already looped to the request's duration (shared with every request of that shape).
    let base: ByteBuffer
    /// The `free` box header plus the text that names the request.
    let padHeader: ByteBuffer
    /// Zero bytes after the header.
    let zeroCount: Int

    var totalBytes: Int { base.readableBytes + padHeader.readableBytes + zeroCount }

    /// `durationSeconds` defaults to fal's default duration, 5 s.
    init(aspectRatio: String, durationSeconds: Int = 5, requestID: String, requestedBytes: Int?) {
        base = VideoAsset.video(for: aspectRatio, seconds: durationSeconds)
        let note = Array("kling-batch fal emulator result for request \(requestID)\n".utf8)
        let minimumBox = 8 + note.count
        let boxSize = max(minimumBox, (requestedBytes ?? 0) - base.readableBytes)
        var header = ByteBuffer()
        header.writeInteger(UInt32(boxSize))
        header.writeString("free")
        header.writeBytes(note)
        padHeader = header
        zeroCount = boxSize - minimumBox
    }

    /// The file's bytes in `range`, as a lazy sequence of chunks of at most `chunkSize` bytes.
    func chunks(in range: Range<Int>, chunkSize: Int = 64 << 10) -> [LazyChunk] {
        var pieces: [LazyChunk] = []
        var position = range.lowerBound
        let segments: [(Range<Int>, Segment)] = [
            (0..<base.readableBytes, .base),
            (base.readableBytes..<(base.readableBytes + padHeader.readableBytes), .header),
            ((base.readableBytes + padHeader.readableBytes)..<totalBytes, .zeros),
        ]
        for (bounds, segment) in segments where position < range.upperBound {
            let lower = max(bounds.lowerBound, position)
            let upper = min(bounds.upperBound, range.upperBound)
            guard lower < upper else { continue }
            var start = lower
            while start < upper {
                let end = min(start + chunkSize, upper)
                pieces.append(LazyChunk(segment: segment, offset: start - bounds.lowerBound, length: end - start))
                start = end
            }
            position = upper
        }
        return pieces
    }

    /// Materialises one chunk; only this chunk's bytes are in memory at a time.
    func bytes(of chunk: LazyChunk) -> ByteBuffer {
        switch chunk.segment {
        case .base: return base.getSlice(at: base.readerIndex + chunk.offset, length: chunk.length)!
        case .header: return padHeader.getSlice(at: padHeader.readerIndex + chunk.offset, length: chunk.length)!
        case .zeros: return ByteBuffer(repeating: 0, count: chunk.length)
        }
    }

    enum Segment: Sendable { case base, header, zeros }

    /// A description of a slice of the file, cheap to hold until it is written.
    struct LazyChunk: Sendable {
        let segment: Segment
        let offset: Int
        let length: Int
    }
}
