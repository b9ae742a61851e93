import Foundation
import KlingCore
import KlingSpec
import Testing
import TestSupport

/// Validates `text` as `name` beside `files` (a rows: CSV, say) inside a fixture folder.
func validate(_ text: String, name: String = "spec.yaml", files: [String: [UInt8]]) throws -> SpecReport {
    let root = try TemporaryDirectory("expand")
    defer { root.remove() }
    let specs = try ImageFixtures.makeSpecFolder(in: root.url)
    for (file, bytes) in files { try Data(bytes).write(to: specs.appendingPathComponent(file)) }
    let path = specs.appendingPathComponent(name).path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return SpecValidator().validate(fileAt: path)
}

@Suite("One template, many jobs: vars, matrix, takes and CSV rows")
struct ExpansionTests {
    static let campaign = """
        defaults: {duration: 5}
        vars:
          style: img/ok.png
        matrix:
          aspect_ratio: ["16:9", "9:16"]
          mood: [dawn, storm]
        takes: 2
        rows: prompts.csv
        meta: {client: acme, mood: "{mood}", take: "{take}"}
        priority: low
        jobs:
          - name: "tower-{row}-{mood}-{aspect_ratio}-{take}"
            prompt: "{subject} at {mood}, in the style of @Image1"
            image_urls: ["{style}"]
        """
    static let prompts = Array("\u{FEFF}subject,duration\r\n\"The tower, \"\"old\"\"\",5\r\n\r\nThe bridge,10\r\n".utf8)

    @Test("rows × matrix × takes: every combination once, in written order, fields and variables filled in")
    func campaign() throws {
        let report = try validate(Self.campaign, name: "tower.yaml", files: ["prompts.csv": Self.prompts])
        #expect(report.isValid, "\(report.diagnostics)")
        #expect(report.jobs.count == 2 * 2 * 2 * 2)
        #expect(report.jobs.prefix(4).map(\.name) == ["tower-1-dawn-16-9-1", "tower-1-dawn-16-9-2", "tower-1-storm-16-9-1", "tower-1-storm-16-9-2"])
        #expect(Set(report.jobs.map(\.name)).count == 16)
        let first = try #require(report.jobs.first)
        #expect(first.prompt == "The tower, \"old\" at dawn, in the style of @Image1")
        #expect(first.aspectRatio == .landscape && first.duration == 5)
        guard case .local(let image)? = first.imageURLs.first else {
            Issue.record("the style image is not a local file: \(first.imageURLs)")
            return
        }
        #expect(image.written == "img/ok.png")
        #expect(first.meta == ["client": "acme", "mood": "dawn", "take": "1"])
        #expect(first.priority == "low" && first.effectiveQueuePriority == "low")
        let bridge = report.jobs.filter { $0.prompt.hasPrefix("The bridge") }
        #expect(bridge.count == 8 && bridge.allSatisfy { $0.duration == 10 })
        #expect(report.jobs.filter { $0.aspectRatio == .portrait }.count == 8)
        let summary = try #require(report.expansion)
        #expect(summary.jobs == 16 && summary.combinations == 8 && summary.takes == 2 && summary.rows == 2)
        #expect(summary.description == "1 job template × 2 rows of prompts.csv × 2 aspect_ratio × 2 mood × 2 takes = 16 jobs")
    }

    @Test("the rows file is part of the spec's identity: another CSV is another batch")
    func identity() throws {
        let one = try validate(Self.campaign, files: ["prompts.csv": Self.prompts])
        let same = try validate(Self.campaign, files: ["prompts.csv": Self.prompts])
        let other = try validate(Self.campaign, files: ["prompts.csv": Self.prompts + Array("The gate,5\n".utf8)])
        #expect(one.sha256 == same.sha256)
        #expect(one.sha256 != other.sha256)
        #expect(other.jobs.count == 24)
    }

    @Test("{{ and }} are literal braces; other braces are text; a plain file keeps its names")
    func braces() throws {
        let report = try validate("""
            vars: {who: cat}
            jobs:
              - prompt: "a {who} says {{who}} and {not a name} and { }"
              - prompt: "JSON-ish {\\"a\\": 1}"
            """, name: "pets.yaml", files: [:])
        #expect(report.isValid, "\(report.diagnostics)")
        #expect(report.jobs.map(\.prompt) == ["a cat says {who} and {not a name} and { }", "JSON-ish {\"a\": 1}"])
        #expect(report.jobs.map(\.name) == ["pets-1", "pets-2"])
        #expect(report.expansion == nil)
    }

    @Test("without a name template, expanded jobs are the batch name and a stable index")
    func defaultNames() throws {
        let text = "matrix: {mood: [dawn, storm]}\ntakes: 2\nprompt: \"a tower at {mood}, take {take}, job {index}\"\n"
        let report = try validate(text, name: "tower.yaml", files: [:])
        #expect(report.jobs.map(\.name) == ["tower-1", "tower-2", "tower-3", "tower-4"])
        #expect(report.jobs.map(\.prompt).last == "a tower at storm, take 2, job 4")
        #expect(try validate(text, name: "tower.yaml", files: [:]).jobs.map(\.name) == report.jobs.map(\.name))
    }

    @Test("a job's own takes: and priority win over the batch's; the batch's apply to the rest")
    func perJob() throws {
        let report = try validate("""
            takes: 3
            priority: high
            jobs:
              - name: "a-{take}"
                prompt: first
              - name: "b-{take}"
                prompt: second
                takes: 1
                priority: low
            """, files: [:])
        #expect(report.isValid, "\(report.diagnostics)")
        #expect(report.jobs.map(\.name) == ["a-1", "a-2", "a-3", "b-1"])
        #expect(report.jobs.map(\.priority) == ["high", "high", "high", "low"])
        #expect(report.expansion?.takesVary == true)
    }

    @Test("a problem in every combination is one error naming the first and counting the rest")
    func folding() throws {
        let report = try validate("""
            matrix: {mood: [dawn, storm, rain]}
            takes: 2
            jobs:
              - name: "t-{mood}-{take}"
                prompt: "a tower at {mood}"
                image_urls: [img/small.png]
            """, files: [:])
        #expect(!report.isValid && report.jobs.isEmpty)
        let errors = report.errors.filter { $0.fieldPath == "jobs[0].image_urls[0]" }
        #expect(errors.count == 1)
        #expect(errors.first?.message.hasSuffix("(in mood=dawn, take=1, and in 5 other jobs)") == true, "\(errors)")
        #expect(errors.first?.line == 6)
    }

    @Test("the limit is checked before expanding, with the count and how it came about")
    func limit() throws {
        let values = (0..<101).map(String.init).joined(separator: ", ")
        let report = try validate("matrix: {n: [\(values)]}\ntakes: 100\nprompt: \"shot {n}\"\n", files: [:])
        #expect(report.errors.map(\.message) == [
            "this file expands to 10,100 jobs (101 n × 100 takes); one file may make at most 10,000. Split it into several files",
        ])
    }

    @Test("a matrix key no string uses is warned about: its values would make identical paid jobs")
    func unusedKey() throws {
        let report = try validate("matrix: {mood: [dawn, storm]}\nprompt: a tower\n", files: [:])
        #expect(report.isValid)
        #expect(report.warnings.map(\.fieldPath) == ["matrix.mood"])
    }

    @Test("CSV values set fields where the header names one, and are variables otherwise")
    func csvFields() throws {
        let csv = Array("prompt, aspect_ratio ,shot\nA quiet street,9:16,12\n\"Two\nlines\",1:1,13\n".utf8)
        let report = try validate("rows: shots.csv\nname: \"shot-{shot}\"\nmeta: {shot: \"{shot}\"}\n", files: ["shots.csv": csv])
        #expect(report.isValid, "\(report.diagnostics)")
        #expect(report.jobs.map(\.name) == ["shot-12", "shot-13"])
        #expect(report.jobs.map(\.aspectRatio) == [.portrait, .square])
        #expect(report.jobs.last?.prompt == "Two\nlines")
        #expect(report.jobs.first?.meta == ["shot": "12"])
    }
}
