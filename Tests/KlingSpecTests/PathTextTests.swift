import Foundation
import Testing
import TestSupport

@testable import KlingSpec

/// The validator splits every spec's path without NSString (it showed in ingest profiles); the split must be
/// NSString's on every absolute, standardized path, or a dropped spec would resolve its images elsewhere.
@Suite("Paths split as NSString splits them")
struct PathTextTests {
    @Test("parent and last component agree with NSString", arguments: [
        "/", "/a", "/a.yaml", "/srv/jobs/a.yaml", "/srv/jobs/accepted/2026-12-02/a.yaml", "/srv/jobs/rejected/x y.yaml",
        "/srv/jöbs/ünïcode.yaml", "/srv/.hidden/.x.yaml", "/a/b/c/d",
    ])
    func split(path: String) {
        // Bytes, not String's ==, which takes NFC and NFD spellings of é for equal.
        #expect(Array(SpecValidator.parent(of: path).utf8) == Array((path as NSString).deletingLastPathComponent.utf8))
        #expect(Array(SpecValidator.lastComponent(of: path).utf8) == Array((path as NSString).lastPathComponent.utf8))
    }

    @Test("a spec archived in accepted/<day>/ or rejected/ keeps its drop folder as image base")
    func archivedBase() throws {
        let temporary = try TemporaryDirectory("image-base")
        defer { temporary.remove() }
        let folder = temporary.path
        for archive in ["accepted/2026-12-02", "rejected"] {
            try FileManager.default.createDirectory(atPath: folder + "/jobs/" + archive, withIntermediateDirectories: true)
        }
        let validator = SpecValidator()
        #expect(validator.imageBase(forSpecAt: folder + "/jobs/accepted/2026-12-02/a.yaml") == folder + "/jobs")
        #expect(validator.imageBase(forSpecAt: folder + "/jobs/rejected/a.yaml") == folder + "/jobs")
        #expect(validator.imageBase(forSpecAt: folder + "/jobs/a.yaml") == folder + "/jobs")
        #expect(validator.imageBase(forSpecAt: folder + "/jobs/accepted/not-a-day/a.yaml") == folder + "/jobs/accepted/not-a-day")
    }

    @Test("the fast ways give what Foundation's give", arguments: [
        "/srv/jobs/take-12.yaml", "/srv/jobs/a.b.yml", "/srv/jobs/a..json", "/srv/jobs/.hidden.yaml", "/srv/jobs/-x.yaml",
        "/srv/jobs/noext", "/srv/jobs/trailing.", "/srv/jobs/ünï.yaml", "/srv/jobs/with space.yaml", "relative/a.yaml", "a.yaml",
        "/srv/./jobs/a.yaml", "/srv//jobs/a.yaml", "/srv/jobs/../a.yaml", "/srv/jobs/", "/srv/jobs/..", "/", "/é/x.yaml",
        "/srv/jobs/e\u{301}.yaml", "/srv/jobs/%41%2e.yaml", "/srv/jobs/~x.yaml",
        "/srv/jobs/" + String(repeating: "n", count: 96) + ".yaml", "/srv/jobs/" + String(repeating: "n", count: 97) + ".yaml",
    ])
    func fastWays(path: String) {
        let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        var safe = String(name.map { JobNameRule.isAllowed($0) ? $0 : "-" })
        while safe.hasPrefix(".") || safe.hasPrefix("-") { safe.removeFirst() }
        #expect(Array(SpecValidator.stem(of: path).utf8) == Array((safe.isEmpty ? "spec" : String(safe.prefix(JobNameRule.maxLength - 4))).utf8))
        let expanded = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        #expect(Array(SpecValidator.absolute(path).utf8) == Array(URL(fileURLWithPath: expanded).standardizedFileURL.path.utf8))
    }
}
