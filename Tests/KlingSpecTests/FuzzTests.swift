import Foundation
import KlingCore
import KlingSpec
import Testing
import TestSupport

/// Thousands of random and mutated inputs: the validator must answer each one, never crash or hang.
@Suite("Hostile and random input")
struct FuzzTests {
    static let seeds: [String] = [
        "prompt: a cat\nduration: 5\naspect_ratio: 16:9\n",
        "defaults: {duration: 10, aspect_ratio: 9:16}\njobs:\n  - name: a\n    prompt: \"@Image1 x\"\n    image_urls: [img/ok.png]\n  - prompt: y\n",
        "{\"prompt\": \"@Element1\", \"elements\": [{\"frontal_image_url\": \"img/ok.png\", \"reference_image_urls\": [\"img/ok.jpg\"]}]}",
        "x-a: &a {duration: 8}\njobs:\n  - <<: *a\n    prompt: z\n",
    ]
    static let tokens = ["prompt", "jobs", "defaults", "elements", "image_urls", "duration", "aspect_ratio", "name", ":", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "<<: ", "\n", "  ", "\"", "'", "#", "|", ">", "~", "null", "16:9", "@Image1", "@Element2", "img/ok.png", "../x", "data:image/png;base64,AAAA", "https://", "? ", "!!str ", "---\n", "\t", "\u{0}", "é", "💥"]

    @Test("5,000 mutated and generated inputs are each accepted or refused with a message")
    func randomInputs() throws {
        let root = try TemporaryDirectory("fuzz")
        defer { root.remove() }
        let specs = try ImageFixtures.makeSpecFolder(in: root.url)
        let path = specs.appendingPathComponent("fuzz.yaml").path
        var generator = SplitMix64(seed: 20261125)
        let validator = SpecValidator()
        var accepted = 0
        for round in 0..<5000 {
            let bytes: [UInt8]
            switch round % 4 {
            case 0: bytes = Self.mutate(Array(Self.seeds.randomElement(using: &generator)!.utf8), using: &generator)
            case 1: bytes = Array((0..<Int.random(in: 1...60, using: &generator)).map { _ in Self.tokens.randomElement(using: &generator)! }.joined().utf8)
            case 2: bytes = (0..<Int.random(in: 0...300, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            default: bytes = Array(Self.generate(depth: 0, using: &generator).utf8)
            }
            let report = validator.validate(contents: bytes, path: path)
            if report.isValid {
                accepted += 1
                #expect(!report.jobs.isEmpty)
            } else {
                #expect(!report.errors.isEmpty, "refused without a message: \(String(decoding: bytes, as: UTF8.self))")
                #expect(report.errors.allSatisfy { !$0.message.isEmpty })
            }
        }
        #expect(accepted > 0, "the generator should produce some valid specs too")
    }

    @Test("pathological sizes and shapes are refused quickly", arguments: [
        ("huge", String(repeating: "prompt: x\n#", count: 120_000)),
        ("deep flow", String(repeating: "[", count: 100_000)),
        ("deep block", (0..<200).map { String(repeating: " ", count: $0) + "k\($0):" }.joined(separator: "\n") + " x"),
        ("deep dashes", String(repeating: "- ", count: 50_000) + "x"),
        ("long line", "prompt: " + String(repeating: "a", count: 900_000)),
        ("many keys", (0..<20_000).map { "k\($0): v" }.joined(separator: "\n")),
        ("alias fan-out", "a: &a [" + String(repeating: "x,", count: 1000) + "x]\n" + (0..<200).map { "b\($0): *a" }.joined(separator: "\n")),
    ])
    func pathological(label: String, text: String) {
        let clock = ContinuousClock()
        let start = clock.now
        let report = SpecValidator().validate(contents: Array(text.utf8), path: "/tmp/\(label).yaml")
        #expect(!report.isValid)
        #expect(!report.errors.isEmpty)
        // Not a timing assertion on the result: a hang would never reach this line at all.
        _ = clock.now - start
    }

    static func mutate(_ bytes: [UInt8], using generator: inout SplitMix64) -> [UInt8] {
        var bytes = bytes
        for _ in 0..<Int.random(in: 1...8, using: &generator) {
            guard !bytes.isEmpty else { break }
            let index = Int.random(in: 0..<bytes.count, using: &generator)
            switch Int.random(in: 0..<5, using: &generator) {
            case 0: bytes[index] = UInt8.random(in: 0...255, using: &generator)
            case 1: bytes.remove(at: index)
            case 2: bytes.insert(contentsOf: Array(tokens.randomElement(using: &generator)!.utf8), at: index)
            case 3: bytes = Array(bytes.prefix(index))
            default: bytes.insert(contentsOf: bytes[index..<min(bytes.count, index + 20)], at: index)
            }
        }
        return bytes
    }

    /// A random spec-shaped document: plausible keys with plausible (or not) values.
    static func generate(depth: Int, using generator: inout SplitMix64) -> String {
        let keys = ["prompt", "duration", "aspect_ratio", "image_urls", "elements", "name", "endpoint", "jobs", "defaults", "frontal_image_url", "reference_image_urls", "bogus"]
        let scalars = ["a cat", "\"@Image1 and @Element1\"", "5", "11", "16:9", "4:3", "img/ok.png", "img/missing.png", "~", "\"\"", "https://example.com/a.png", "[]", "{}"]
        if depth > 3 || Bool.random(using: &generator) { return scalars.randomElement(using: &generator)! }
        if Bool.random(using: &generator) {
            let items = (0..<Int.random(in: 0...4, using: &generator)).map { _ in generate(depth: depth + 1, using: &generator) }
            return "[" + items.joined(separator: ", ") + "]"
        }
        let pairs = (0..<Int.random(in: 1...5, using: &generator)).map { _ in
            "\(keys.randomElement(using: &generator)!): \(generate(depth: depth + 1, using: &generator))"
        }
        return "{" + pairs.joined(separator: ", ") + "}"
    }
}
