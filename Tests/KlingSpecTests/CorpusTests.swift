import Foundation
import KlingCore
import KlingSpec
import Testing
import TestSupport

/// Every file in `Corpus/invalid` is refused with the messages its `# expect:` lines name.
@Suite("Invalid spec corpus")
struct CorpusTests {
    static let corpus = Bundle.module.url(forResource: "Corpus", withExtension: nil)!.appendingPathComponent("invalid")
    static let names = (try? FileManager.default.contentsOfDirectory(atPath: corpus.path).filter { $0.hasSuffix(".yaml") }.sorted()) ?? []

    @Test("the corpus holds at least 40 invalid specs")
    func size() {
        #expect(Self.names.count >= 40)
    }

    @Test("each invalid spec is refused with its expected message", arguments: names)
    func refused(name: String) throws {
        try TemporaryDirectory.with("corpus") { directory in
            let specs = try ImageFixtures.makeSpecFolder(in: directory.url)
            // A case's rows: file sits beside it in the corpus (named after the case); copy them all.
            for csv in try FileManager.default.contentsOfDirectory(atPath: Self.corpus.path) where csv.hasSuffix(".csv") {
                try FileManager.default.copyItem(at: Self.corpus.appendingPathComponent(csv), to: specs.appendingPathComponent(csv))
            }
            var text = try String(contentsOf: Self.corpus.appendingPathComponent(name), encoding: .utf8)
            text = text.replacingOccurrences(of: "PLACEHOLDER_2501", with: String(repeating: "a", count: 2501))
            let path = specs.appendingPathComponent(name).path
            try text.write(toFile: path, atomically: true, encoding: .utf8)

            let expectations = text.split(separator: "\n").filter { $0.hasPrefix("# expect: ") }.map { $0.dropFirst("# expect: ".count) }
            try #require(!expectations.isEmpty, "\(name) has no # expect: line")
            let report = SpecValidator().validate(fileAt: path)
            #expect(!report.isValid)
            #expect(report.jobs.isEmpty, "an invalid file must yield no jobs")
            for expectation in expectations {
                var wanted = String(expectation)
                var position: (Int, Int)?
                if let first = wanted.split(separator: " ").first, first.contains(":"),
                    case let parts = first.split(separator: ":"), parts.count == 2, let line = Int(parts[0]), let column = Int(parts[1])
                {
                    position = (line, column)
                    wanted = String(wanted.dropFirst(first.count + 1))
                }
                let matches = report.errors.filter { error in
                    let text = error.fieldPath.isEmpty ? error.message : "\(error.fieldPath): \(error.message)"
                    return text.contains(wanted)
                }
                #expect(!matches.isEmpty, "\(name): no error contains '\(wanted)'; got:\n\(report.errors.map(\.description).joined(separator: "\n"))")
                if let position, let match = matches.first {
                    #expect(match.line == position.0 && match.column == position.1, "\(name): '\(wanted)' at \(match.line ?? 0):\(match.column ?? 0), expected \(position.0):\(position.1)")
                }
            }
            for error in report.errors { #expect(error.file == path) }
        }
    }

    @Test("the examples in jobs/ are all valid, with no warnings")
    func examples() throws {
        let jobs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("jobs")
        let files = try SpecFiles.expand([jobs.path]).files
        #expect(files.count >= 3)
        for file in files {
            let report = SpecValidator().validate(file)
            #expect(report.isValid, "\(file): \(report.errors.map(\.description))")
            #expect(report.warnings.isEmpty, "\(file): \(report.warnings.map(\.description))")
        }
        let greenhouse = SpecValidator().validate(fileAt: jobs.appendingPathComponent("greenhouse.yaml").path)
        let job = try #require(greenhouse.jobs.first)
        #expect(job.elements.count == 2 && job.imageURLs.count == 2)
        #expect(job.elements.allSatisfy { !$0.references.isEmpty })
        #expect(job.localImages.count == 7)
    }
}
