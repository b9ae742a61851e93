/// An MP4 box as a tree the looper can edit: containers hold their children, other boxes their body bytes, and
/// sizes are recomputed when the tree is written back, so a table may grow without hand-patching its parents.
struct EditableBox: Equatable {
    var type: String
    /// The body of a leaf box (after its header); empty for containers.
    var body: [UInt8]
    /// The boxes inside a container; nil for a leaf.
    var children: [EditableBox]?

    /// The boxes the looper has to descend into; everything else (stsd, udta, dinf…) is kept as opaque bytes.
    static let containers: Set<String> = ["moov", "trak", "mdia", "minf", "stbl", "edts"]

    /// Parses the boxes laid end to end in `bytes`, which must be whole.
    static func parseSequence(_ bytes: ArraySlice<UInt8>) throws -> [EditableBox] {
        try BoxSpan.split(bytes).map { span in
            let body = bytes[span.bodyStart..<span.end]
            if containers.contains(span.type) {
                return EditableBox(type: span.type, body: [], children: try parseSequence(body))
            }
            return EditableBox(type: span.type, body: Array(body), children: nil)
        }
    }

    /// The box as bytes: a 32-bit size, or a 64-bit `largesize` when it does not fit.
    func serialized() -> [UInt8] {
        let content = children.map { $0.flatMap { $0.serialized() } } ?? body
        var out: [UInt8] = []
        if content.count + 8 <= Int(UInt32.max) {
            out.appendBigEndian(UInt64(content.count + 8), width: 4)
            out += Array(type.utf8)
        } else {
            out.appendBigEndian(1, width: 4)
            out += Array(type.utf8)
            out.appendBigEndian(UInt64(content.count + 16), width: 8)
        }
        return out + content
    }

    /// The first direct child of `type`.
    func child(_ type: String) -> EditableBox? { children?.first { $0.type == type } }

    /// Applies `change` to every box in the tree whose type is `type`, this one included.
    mutating func modifyAll(_ type: String, _ change: (inout EditableBox) throws -> Void) rethrows {
        if self.type == type { try change(&self) }
        guard var kids = children else { return }
        for index in kids.indices { try kids[index].modifyAll(type, change) }
        children = kids
    }
}

/// Where one box lies in a byte sequence: its type, where its body starts and where it ends.
struct BoxSpan: Equatable {
    let type: String
    let start: Int
    let bodyStart: Int
    let end: Int

    /// Splits `bytes` into the boxes laid end to end in it, honouring 64-bit sizes and size 0 ("to the end").
    static func split(_ bytes: ArraySlice<UInt8>) throws -> [BoxSpan] {
        var spans: [BoxSpan] = []
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            guard offset + 8 <= bytes.endIndex else { throw VideoLoopError.malformed("a box header is cut short at \(offset)") }
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            var size = Int(bytes.bigEndian(at: offset, width: 4))
            var header = 8
            if size == 1 {
                guard offset + 16 <= bytes.endIndex else { throw VideoLoopError.malformed("\(type) largesize is cut short") }
                size = Int(bytes.bigEndian(at: offset + 8, width: 8))
                header = 16
            } else if size == 0 {
                size = bytes.endIndex - offset
            }
            guard size >= header, offset + size <= bytes.endIndex else {
                throw VideoLoopError.malformed("\(type) at \(offset) has size \(size) beyond its container")
            }
            spans.append(BoxSpan(type: type, start: offset, bodyStart: offset + header, end: offset + size))
            offset += size
        }
        return spans
    }
}

/// Why an MP4 could not be looped; the embedded clips never hit these, a changed fixture might.
enum VideoLoopError: Error, CustomStringConvertible {
    case malformed(String)
    case unsupported(String)

    var description: String {
        switch self {
        case .malformed(let what): return "malformed MP4: \(what)"
        case .unsupported(let what): return "cannot loop this MP4: \(what)"
        }
    }
}

extension Collection where Element == UInt8, Index == Int {
    /// A big-endian unsigned integer of `width` bytes at `index`.
    func bigEndian(at index: Int, width: Int) -> UInt64 {
        self[index..<(index + width)].reduce(0) { $0 << 8 | UInt64($1) }
    }
}

extension Array where Element == UInt8 {
    /// Appends `value` as `width` big-endian bytes.
    mutating func appendBigEndian(_ value: UInt64, width: Int) {
        for shift in stride(from: (width - 1) * 8, through: 0, by: -8) { append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    /// Overwrites `width` bytes at `index` with `value`, big-endian.
    mutating func setBigEndian(_ value: UInt64, at index: Int, width: Int) {
        for byte in 0..<width { self[index + byte] = UInt8(truncatingIfNeeded: value >> UInt64((width - 1 - byte) * 8)) }
    }
}
