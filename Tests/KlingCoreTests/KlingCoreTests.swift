import Foundation
import KlingCore
import Testing

@Suite("JSON values and money")
struct KlingCoreTests {
    @Test("timestamps and hex are written like Foundation's formatters would, without them")
    func timestampsAndHex() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for seconds in [0.0, 1_795_000_000.239, 1_795_000_000.999_4, 951_782_400.5, 4_102_444_799.001] {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(date.iso8601Milliseconds == formatter.string(from: date), "\(seconds)")
            #expect(date.iso8601 == ISO8601DateFormatter().string(from: date), "\(seconds)")
            #expect(Date(iso8601: date.iso8601Milliseconds).map { abs($0.timeIntervalSince1970 - seconds) < 0.001 } == true, "\(seconds)")
        }
        #expect(Date(iso8601: "2025-11-24T16:00:00Z")?.timeIntervalSince1970 == 1_764_000_000)
        #expect(Date(iso8601: "2025-11-24T18:00:00+02:00")?.timeIntervalSince1970 == 1_764_000_000)
        #expect(Date(iso8601: "2025-11-24T16:00:00.250Z")?.timeIntervalSince1970 == 1_764_000_000.25)
        #expect(Date(iso8601: "yesterday") == nil && Date(iso8601: "") == nil)
        #expect([UInt8]([0x00, 0x0f, 0xa5, 0xff]).hexString == "000fa5ff")
        #expect([UInt8]().hexString == "")
    }

    @Test("canonical JSON is the same bytes for the same value, whatever the key order")
    func canonical() throws {
        let a = try JSONValue.parse(#"{"b": [1, 2.5, "x"], "a": {"z": null, "y": true}}"#)
        let b = try JSONValue.parse(#"{"a": {"y": true, "z": null}, "b": [1, 2.5, "x"]}"#)
        #expect(a == b)
        #expect(a.canonicalString() == #"{"a":{"y":true,"z":null},"b":[1,2.5,"x"]}"#)
        #expect(a.canonicalData() == b.canonicalData())
    }

    @Test("numbers keep integers apart from doubles, and whole doubles read as integers")
    func numbers() throws {
        #expect(try JSONValue.parse("5") == .int(5))
        #expect(try JSONValue.parse("5.5") == .double(5.5))
        #expect(JSONValue.double(5.0).intValue == 5)
        #expect(JSONValue.double(5.5).intValue == nil)
        #expect(JSONValue.string("5").intValue == nil)
    }

    @Test("every kind parses to its own case, whatever order the decoder tries them in")
    func kinds() throws {
        let parsed = try JSONValue.parse(#"[null, "5", 5, 5.5, -0.5, true, "true", false, [], {}, [[1]], {"a": {"b": "c"}}, 9007199254740993]"#)
        #expect(parsed == .array([
            .null, .string("5"), .int(5), .double(5.5), .double(-0.5), .bool(true), .string("true"), .bool(false), .array([]),
            .object([:]), .array([.array([.int(1)])]), .object(["a": .object(["b": .string("c")])]), .int(9_007_199_254_740_993),
        ]))
    }

    @Test("non-JSON says why")
    func parseErrors() {
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse("<html>") }
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse("") }
    }

    @Test("pretty output is sorted and readable")
    func pretty() {
        let value: JSONValue = ["b": 1, "a": "x/y"]
        #expect(String(decoding: value.prettyData(), as: UTF8.self) == "{\n  \"a\" : \"x/y\",\n  \"b\" : 1\n}")
    }

    @Test("Codable round trip through a struct")
    func codable() throws {
        struct Sample: Codable, Equatable { var name: String; var count: Int }
        let value = try JSONValue(encoding: Sample(name: "n", count: 3))
        #expect(value == ["count": 3, "name": "n"])
        #expect(try value.decode(Sample.self) == Sample(name: "n", count: 3))
    }

    @Test("dollars are exact in millionths and print as cents")
    func money() throws {
        #expect(USD.klingO1PerSecond * 5 == USD(micros: 560_000))
        #expect((USD.klingO1PerSecond * 5).description == "$0.56")
        #expect((USD.klingO1PerSecond * 10).description == "$1.12")
        #expect(USD(micros: 22_400_000).description == "$22.40")
        #expect(USD(micros: 5_000).description == "$0.01")
        #expect(USD(parsing: "$2") == USD(micros: 2_000_000))
        #expect(USD(parsing: "0.112") == USD.klingO1PerSecond)
        #expect(USD(parsing: "2.5") == USD(micros: 2_500_000))
        #expect(USD(parsing: ".5") == USD(micros: 500_000))
        for bad in ["", "abc", "-1", "1.2345678", "1.2.3", "1e3"] { #expect(USD(parsing: bad) == nil, "\(bad)") }
    }
}
