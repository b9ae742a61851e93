import KlingCore
import Yams

/// `meta:`, free-form tags carried into every manifest (a client, a campaign, a shot number): a batch's top-level
/// `meta`, then `defaults.meta`, then the job's own, each key of a later one replacing the earlier one's.
extension SpecReader {
    /// The most JSON one job's merged `meta` may take: tags, not a document.
    static let maxMetaBytes = 4096

    /// The job's merged meta, or nil when none is given anywhere; errors are reported where the value was written.
    mutating func readMeta(_ fields: JobFields, batch: [String: JSONValue]) -> [String: JSONValue]? {
        var merged = batch
        var given = !batch.isEmpty
        for (entry, place) in [(fields.defaults.first { $0.key == "meta" }, "defaults.meta"), (fields.own.first { $0.key == "meta" }, SpecReader.join(fields.path, "meta"))] {
            guard let entry, !entry.value.isNull else { continue }
            given = true
            merged.merge(readMetaMapping(entry.value, path: place)) { _, new in new }
        }
        guard given else { return nil }
        let size = JSONValue.object(merged).canonicalString().utf8.count
        if size > Self.maxMetaBytes {
            error(at: fields.entry("meta")?.value ?? fields.node, fields.place("meta"),
                  "meta takes \(size) bytes as JSON for this job; at most \(Self.maxMetaBytes) are allowed (it is for tags, not documents)")
        }
        return merged
    }

    /// One `meta:` mapping: keys to strings, numbers or booleans.
    mutating func readMetaMapping(_ node: Node, path: String) -> [String: JSONValue] {
        guard case .mapping(let mapping) = node else {
            error(at: node, path, "meta must be a mapping of names to values, e.g. meta: {client: acme, shot: 12}, not \(node.kindName)")
            return [:]
        }
        var values: [String: JSONValue] = [:]
        for entry in entries(of: mapping, path: path) {
            guard let value = Self.metaValue(entry.value) else {
                error(at: entry.value, SpecReader.join(path, entry.key), "meta values must be strings, numbers or booleans, not \(entry.value.kindName)")
                continue
            }
            values[entry.key] = value
        }
        return values
    }

    /// A scalar as JSON would read it: `true`/`false` a boolean, `12` or `-1.5e3` a number, everything else (quoted,
    /// `010`, `1:30`, `0x1F`, `yes`, `NO`, `1.10`…) the string as written, so a tag is never silently rewritten by
    /// YAML 1.1's octal, base-60 or yes/no rules. Nothing (null) is not a value.
    static func metaValue(_ node: Node) -> JSONValue? {
        guard case .scalar(let scalar) = node, !node.isNull else { return nil }
        let text = scalar.string
        if node.isQuoted { return .string(text) }
        if text == "true" { return .bool(true) }
        if text == "false" { return .bool(false) }
        guard let shape = JSONNumberShape(text) else { return .string(text) }
        if shape == .integer, text.count - (text.hasPrefix("-") ? 1 : 0) <= 18, let number = Int64(text) { return .int(number) }
        if let number = Double(text), number.isFinite,
           JSONValue.double(number).canonicalString() == text {
            return .double(number)
        }
        return .string(text)
    }
}

/// Whether text is a number as JSON writes it (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`), checked by hand:
/// a regex literal here was compiled on every call, and ten thousand expanded jobs spent most of their time on it.
enum JSONNumberShape: Equatable {
    case integer, fraction

    init?(_ text: String) {
        var bytes = Array(text.utf8)[...]
        if bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
        func digits(_ rest: inout ArraySlice<UInt8>) -> Int {
            let count = rest.prefix { $0 >= 48 && $0 <= 57 }.count
            rest = rest.dropFirst(count)
            return count
        }
        guard let first = bytes.first, first >= 48, first <= 57 else { return nil }
        let whole = digits(&bytes)
        if first == 48 && whole > 1 { return nil }
        var shape = JSONNumberShape.integer
        if bytes.first == UInt8(ascii: ".") {
            bytes = bytes.dropFirst()
            guard digits(&bytes) > 0 else { return nil }
            shape = .fraction
        }
        if bytes.first == UInt8(ascii: "e") || bytes.first == UInt8(ascii: "E") {
            bytes = bytes.dropFirst()
            if bytes.first == UInt8(ascii: "+") || bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
            guard digits(&bytes) > 0 else { return nil }
            shape = .fraction
        }
        guard bytes.isEmpty else { return nil }
        self = shape
    }
}
