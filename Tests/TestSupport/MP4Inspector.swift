import Foundation
import KlingCore

/// Reads an MP4's box structure, enough to tell a playable video from bytes that merely have the right length.
public struct MP4Inspector {
    /// Top-level box types in order, e.g. `["ftyp", "moov", "free", "mdat", "free"]`.
    public let topLevelBoxes: [String]
    /// Width and height from the first video track header (`tkhd`), if found.
    public let dimensions: (width: Int, height: Int)?

    public init(file: URL) throws {
        let data = try Data(contentsOf: file)
        var boxes: [String] = []
        var offset = 0
        var moov: Range<Int>?
        while offset + 8 <= data.count {
            let size = Int(data.readUInt32(at: offset))
            let type = String(decoding: data[(offset + 4)..<(offset + 8)], as: UTF8.self)
            guard size >= 8, offset + size <= data.count else {
                throw HarnessError("box \(type) at \(offset) has size \(size) beyond the file's \(data.count) bytes")
            }
            boxes.append(type)
            if type == "moov" { moov = (offset + 8)..<(offset + size) }
            offset += size
        }
        guard offset == data.count else { throw HarnessError("\(data.count - offset) trailing bytes after the last box") }
        topLevelBoxes = boxes
        // The size as kling-batch itself reads it (KlingCore's box reader): one reader for tests and product.
        dimensions = moov == nil ? nil : (try? MP4Summary.read(Array(data))).flatMap { $0.width > 0 ? ($0.width, $0.height) : nil }
    }

    /// True for a file that a player can open: `ftyp` first, and both `moov` and `mdat` present.
    public var isPlayable: Bool {
        topLevelBoxes.first == "ftyp" && topLevelBoxes.contains("moov") && topLevelBoxes.contains("mdat")
    }
}

extension Data {
    func readUInt32(at offset: Int) -> UInt32 {
        var value: UInt32 = 0
        for index in 0..<4 { value = value << 8 | UInt32(self[self.startIndex + offset + index]) }
        return value
    }
}
