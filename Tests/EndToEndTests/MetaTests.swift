import Foundation
import KlingCore
import Testing
import TestSupport

/// Tags written in a spec come out in every manifest, and find their jobs again.
@Suite("Spec meta in manifests and list", .serialized, .timeLimit(.minutes(5)))
struct MetaTests {
    @Test("meta from the batch, defaults and jobs reaches each job's manifest, show and list --json; list --meta finds them")
    func metaEndToEnd() async throws {
        let folder = try TemporaryDirectory("meta")
        defer { folder.remove() }
        let jobs = folder.path + "/jobs"
        try FileManager.default.createDirectory(atPath: jobs + "/refs", withIntermediateDirectories: true)
        try SpecWriter.png(salt: "meta").write(to: URL(fileURLWithPath: jobs + "/refs/a.png"))
        try """
            meta: {client: acme, campaign: spring}
            defaults: {duration: 3, image_urls: [refs/a.png], meta: {shot: 1}}
            jobs:
              - {name: one, prompt: "@Image1 one"}
              - {name: two, prompt: "@Image1 two", meta: {shot: 2, client: globex}}
            """.write(toFile: jobs + "/tags.yaml", atomically: true, encoding: .utf8)
        var environment = Processes.environment()
        environment["HOME"] = folder.path
        let state = ["--simulate", "--state-dir", folder.path + "/state"]
        let run = try ChildProcess("kling-batch", ["run", "--once", "--out", folder.path + "/out", jobs + "/tags.yaml"] + state, environment: environment)
        #expect(await run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        var metas: [String: JSONValue] = [:]
        for name in Processes.files(in: folder.path + "/out", suffix: ".json") {
            let manifest = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: folder.path + "/out/" + name)))
            metas[manifest["job"]?.stringValue ?? "?"] = manifest["meta"]
        }
        #expect(metas == ["one": ["client": "acme", "campaign": "spring", "shot": 1], "two": ["client": "globex", "campaign": "spring", "shot": 2]])
        let acme = try await Processes.command(["list", "--json", "--meta", "client=acme"] + state, environment: environment)
        #expect(try JSONValue.parse(Data(acme.out.utf8)).arrayValue?.map { $0["job"] } == ["one"], "\(acme.out) \(acme.err)")
        let spring = try await Processes.command(["list", "--json", "--meta", "campaign=spring", "--meta", "shot=2"] + state, environment: environment)
        #expect(try JSONValue.parse(Data(spring.out.utf8)).arrayValue?.map { $0["meta"]?["client"] } == ["globex"])
        let shown = try await Processes.command(["show", "tags/two"] + state, environment: environment)
        #expect(shown.out.contains(#"meta:       {"campaign":"spring","client":"globex","shot":2}"#), "\(shown.out)")
    }
}
