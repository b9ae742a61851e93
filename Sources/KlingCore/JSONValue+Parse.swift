import Foundation

extension JSONValue {
    /// Parses a JSON document (RFC 8259); throws `JSONValue.ParseError` with a short reason when the bytes are not JSON.
    ///
    /// Read here, byte by byte: decoding a `JSONValue` through `Codable` must guess each value's kind by trying them
    /// in turn, and every wrong guess throws an error that costs more than the parse (a listing page of 100 requests
    /// took 6.9 ms; a faulty run spent a fifth of its CPU there). `JSONSerialization` was twice as fast but reads
    /// big negative integers as doubles and accepts trailing commas. The tree is the one `Codable` gives
    /// (`JSONValueParseTests` compares them on random documents), so values parsed either way compare equal.
    public static func parse(_ data: Data) throws -> JSONValue {
        do {
            return try data.withUnsafeBytes { bytes in
                var reader = JSONReader(bytes: bytes.bindMemory(to: UInt8.self))
                let value = try reader.document()
                return value
            }
        } catch let error as JSONReader.Failure {
            throw ParseError(reason: error.reason, byteCount: data.count)
        }
    }

    /// Parses a JSON document given as text.
    public static func parse(_ text: String) throws -> JSONValue {
        try parse(Data(text.utf8))
    }
}

/// A recursive-descent reader over UTF-8 bytes, producing `JSONValue`s as `Codable` reads them: integral numbers
/// that fit in 64 bits are `.int` (`5`, `5.0`, `1e2`), other numbers `.double`, a repeated key keeps its first value.
struct JSONReader {
    struct Failure: Error {
        let reason: String
    }

    /// Nesting deeper than this is refused, as JSONDecoder refuses it, so hostile input cannot exhaust the stack.
    static let maxDepth = 512

    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// One value and nothing after it but whitespace.
    mutating func document() throws -> JSONValue {
        // A UTF-8 byte order mark is skipped, as JSONDecoder skips it.
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { index = 3 }
        let value = try self.value(depth: 0)
        skipWhitespace()
        guard index == bytes.count else { throw failure("unexpected text after the JSON value") }
        return value
    }

    private mutating func value(depth: Int) throws -> JSONValue {
        skipWhitespace()
        guard index < bytes.count else { throw failure("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw failure("unexpected character")
        }
    }

    private mutating func object(depth: Int) throws -> JSONValue {
        guard depth < Self.maxDepth else { throw failure("nested too deeply (more than \(Self.maxDepth) levels)") }
        index += 1
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if try consume(UInt8(ascii: "}")) { return .object(members) }
        repeat {
            skipWhitespace()
            // A trailing comma is accepted, as JSONDecoder accepts it.
            if try consume(UInt8(ascii: "}")) { return .object(members) }
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw failure("expected a key in quotes") }
            let key = try string()
            skipWhitespace()
            guard try consume(UInt8(ascii: ":")) else { throw failure("expected ':' after a key") }
            let member = try value(depth: depth + 1)
            if members[key] == nil { members[key] = member }
            skipWhitespace()
        } while try consume(UInt8(ascii: ","))
        guard try consume(UInt8(ascii: "}")) else { throw failure("expected ',' or '}' in an object") }
        return .object(members)
    }

    private mutating func array(depth: Int) throws -> JSONValue {
        guard depth < Self.maxDepth else { throw failure("nested too deeply (more than \(Self.maxDepth) levels)") }
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if try consume(UInt8(ascii: "]")) { return .array(elements) }
        repeat {
            skipWhitespace()
            if try consume(UInt8(ascii: "]")) { return .array(elements) }
            elements.append(try value(depth: depth + 1))
            skipWhitespace()
        } while try consume(UInt8(ascii: ","))
        guard try consume(UInt8(ascii: "]")) else { throw failure("expected ',' or ']' in an array") }
        return .array(elements)
    }

    private mutating func literal(_ word: StaticString, _ value: JSONValue) throws -> JSONValue {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count, memcmp(bytes.baseAddress! + index, word.utf8Start, count) == 0 else {
            throw failure("unexpected character")
        }
        index += count
        return value
    }

    private mutating func consume(_ byte: UInt8) throws -> Bool {
        guard index < bytes.count else { throw failure("unexpected end of input") }
        guard bytes[index] == byte else { return false }
        index += 1
        return true
    }

    mutating func skipWhitespace() {
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 { index += 1 }
    }

    func failure(_ reason: String) -> Failure {
        Failure(reason: "\(reason) at byte \(index)")
    }
}
