private let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

/// Lowercase hex of digests, written by hand because `String(format: "%02x")` per byte went through
/// CoreFoundation's formatter and cost 7% of ingesting a spec file.
extension Sequence where Element == UInt8 {
    /// The bytes as lowercase hex, two digits each (`sha256` values in the store, manifests and logs).
    public var hexString: String {
        var text: [UInt8] = []
        text.reserveCapacity(underestimatedCount * 2)
        for byte in self {
            text.append(hexDigits[Int(byte >> 4)])
            text.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
