import Foundation
import KlingCore
import Testing

/// `JSONValue.parse` reads bytes itself for speed; the tree must be the one `Codable` gives, since request bodies
/// parsed either way are compared to find a lost submit (a mismatch would mean paying twice).
@Suite("Parsing JSON values")
struct JSONValueParseTests {
    /// The tree `Codable` gives: the reference.
    static func codable(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    @Test("numbers, booleans and strings read as Codable reads them", arguments: [
        "0", "1", "-1", "5.0", "1e2", "1E+2", "-0", "0.5", "1.5e-7", "9223372036854775807", "-9223372036854775808",
        "9223372036854775808", "18446744073709551615", "123456789012345678901234", "3.141592653589793", "true", "false", "null",
        #""a\u00e9\ud83d\ude00\n\"\\/""#, #""""#, "[]", "{}", "[true, 1, 1.0, 0, false]", #"{"a": {"b": [1, {"c": null}]}, "d": "e"}"#,
        #"  {"dup": 1, "dup": 2}  "#, "[1e-400]", "[1,]", #"{"a":1,}"#, "[9007199254740993.0]", "[1.152921504606847e+18]", "[-9223372036854775809]",
        "[-9223372036854775808.0]", "[1.0000000000000001]", "\u{FEFF}[1]", "[2.5e1]", "[1e30]", "[-4.5e18]", "[123.456e5]", "[0.1, 1E-2, -0.0]",
    ])
    func sameAsCodable(_ text: String) throws {
        #expect(try JSONValue.parse(text) == Self.codable(text), "\(text)")
    }

    @Test("booleans stay booleans, never 0 or 1; integral numbers that fit are integers")
    func kinds() throws {
        #expect(try JSONValue.parse("[true, false, 1, 0, 2.0, 2.5]") == [true, false, 1, 0, 2, 2.5])
        #expect(try JSONValue.parse("9223372036854775808") == .double(9_223_372_036_854_775_808))
    }

    @Test("random documents give the same tree both ways, in canonical and in loose spellings")
    func random() throws {
        var generator = SplitMix64(seed: 20_261_202)
        for _ in 0..<400 {
            let value = Self.randomValue(depth: 0, using: &generator)
            let canonical = value.canonicalString()
            #expect(try JSONValue.parse(canonical) == Self.codable(canonical), "\(canonical)")
            #expect(try JSONValue.parse(canonical) == value, "\(canonical)")
            let loose = canonical.replacingOccurrences(of: ",", with: " ,\n ").replacingOccurrences(of: ":", with: " : ")
            #expect(try JSONValue.parse(loose) == Self.codable(loose), "\(loose)")
        }
    }

    @Test("what is not JSON throws a ParseError, never a crash", arguments: [
        "", "<html>", "{", "[,]", "[1,,]", "{,}", "{\"a\" 1}", "tru", "1 2", "\"unterminated", "{\"a\":1}}", "NaN", "[1e400]", "-1e400", "01", "1.", "-", "[\"\\ud800\"]", "\"\\x\"", String(repeating: "[", count: 100_000),
    ])
    func refused(_ text: String) {
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(text) }
        #expect(throws: (any Error).self, "Codable refuses it too") { try Self.codable(text) }
    }

    @Test("invalid UTF-8 is refused")
    func invalidBytes() {
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(Data([0x22, 0xFF, 0xFE, 0x22])) }
    }

    static func randomValue(depth: Int, using generator: inout SplitMix64) -> JSONValue {
        let kind = Int.random(in: depth > 3 ? 0...4 : 0...6, using: &generator)
        switch kind {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &generator))
        case 2: return .int(Int64.random(in: Int64.min...Int64.max, using: &generator) >> Int64.random(in: 0...62, using: &generator))
        // Never integral: an integral double reads back as an integer, as Codable reads it.
        case 3: return .double(Double(Int.random(in: -1_000_000...1_000_000, using: &generator)) / 64 + 1.0 / 128)
        case 4:
            let characters = Array("abc é😀\"\\/\n\t\u{1}xyz")
            return .string(String((0..<Int.random(in: 0...12, using: &generator)).map { _ in characters.randomElement(using: &generator)! }))
        case 5: return .array((0..<Int.random(in: 0...5, using: &generator)).map { _ in randomValue(depth: depth + 1, using: &generator) })
        default:
            var object: [String: JSONValue] = [:]
            for index in 0..<Int.random(in: 0...5, using: &generator) { object["k\(index)"] = randomValue(depth: depth + 1, using: &generator) }
            return .object(object)
        }
    }
}
