import Foundation

/// Any JSON document, kept exactly so that what we send to fal can be stored, compared and echoed back.
///
/// fal's model inputs, outputs, metrics and error details are open-ended JSON; a closed enum keeps them
/// `Sendable`, `Hashable` and comparable by value, which reconciling an uncertain submit relies on.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
}

extension JSONValue {
    /// The value at `key` when this is an object, else nil.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    /// The element at `index` when this is an array and the index exists, else nil.
    public subscript(index: Int) -> JSONValue? {
        if case .array(let elements) = self, elements.indices.contains(index) { return elements[index] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// Integers written as JSON numbers, including whole doubles such as `5.0`.
    public var intValue: Int64? {
        switch self {
        case .int(let value): return value
        case .double(let value) where value.rounded() == value && abs(value) < 9.0e15: return Int64(value)
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let value) = self { return value }
        return nil
    }

    public var isNull: Bool { self == .null }
}

extension JSONValue: Codable {
    /// Tries the kinds most common in fal's answers first: every failed try throws (with its coding path), and a
    /// listing page of 100 requests is mostly strings. JSONDecoder never converts between kinds, so the order
    /// changes no result, only how many tries fail.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([String: JSONValue].self) {
            self = .object(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a JSON value")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral, ExpressibleByFloatLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(nilLiteral: ()) { self = .null }
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension JSONValue {

    /// Encodes with sorted keys and no extra whitespace, so equal values always give equal bytes.
    public func canonicalData() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding a closed enum of JSON-safe cases cannot fail except for non-finite doubles,
        // which JSON cannot represent; those are written as null.
        return (try? encoder.encode(self.replacingNonFiniteNumbers())) ?? Data("null".utf8)
    }

    /// The canonical encoding as text.
    public func canonicalString() -> String {
        String(decoding: canonicalData(), as: UTF8.self)
    }

    /// Encodes sorted and indented for files people read (manifests, `--json` output).
    public func prettyData() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return (try? encoder.encode(self.replacingNonFiniteNumbers())) ?? Data("null".utf8)
    }

    private func replacingNonFiniteNumbers() -> JSONValue {
        switch self {
        case .double(let value) where !value.isFinite: return .null
        case .array(let elements): return .array(elements.map { $0.replacingNonFiniteNumbers() })
        case .object(let members): return .object(members.mapValues { $0.replacingNonFiniteNumbers() })
        default: return self
        }
    }

    static func describe(_ error: any Error) -> String {
        if let described = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String { return described }
        if case DecodingError.dataCorrupted(let context) = error {
            let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return underlying ?? context.debugDescription
        }
        return "\(error)"
    }

    /// Why some bytes could not be read as JSON.
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public let reason: String
        public let byteCount: Int
        public var description: String { "not valid JSON (\(byteCount) bytes): \(reason)" }
    }
}

extension JSONValue {
    /// Encodes any `Encodable` into a `JSONValue` tree.
    public init(encoding value: some Encodable) throws {
        let data = try JSONEncoder().encode(value)
        self = try Self.parse(data)
    }

    /// Decodes this tree into a `Decodable` type.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: canonicalData())
    }
}
