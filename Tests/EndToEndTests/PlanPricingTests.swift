import Foundation
import KlingCore
import Testing
import TestSupport

/// `plan` and the runner price each job at its endpoint's price, and say so when they have to guess.
@Suite("Planning with prices per endpoint", .serialized, .timeLimit(.minutes(5)))
struct PlanPricingTests {
    static let standard = "fal-ai/kling-video/o1/standard/reference-to-video"

    /// Three 3 s Pro jobs and two 3 s Standard ones, in `<folder>/jobs/mix.yaml`.
    func writeSpec(_ folder: TemporaryDirectory) throws -> String {
        let jobs = folder.path + "/jobs"
        try FileManager.default.createDirectory(atPath: jobs + "/refs", withIntermediateDirectories: true)
        try SpecWriter.png(salt: "plan").write(to: URL(fileURLWithPath: jobs + "/refs/a.png"))
        var text = "defaults: {duration: 3, image_urls: [refs/a.png]}\njobs:\n"
        for index in 0..<3 { text += "  - {name: pro-\(index), prompt: \"@Image1 take \(index)\"}\n" }
        for index in 0..<2 { text += "  - {name: std-\(index), prompt: \"@Image1 take \(index)\", endpoint: \(Self.standard)}\n" }
        try text.write(toFile: jobs + "/mix.yaml", atomically: true, encoding: .utf8)
        return jobs + "/mix.yaml"
    }

    @Test("plan prices each job exactly, so its column adds up to its total; an unpriced endpoint is marked and counted at the highest known price; --price and the config's prices: set it")
    func plan() async throws {
        let folder = try TemporaryDirectory("plan-prices")
        defer { folder.remove() }
        let spec = try writeSpec(folder)
        let guessed = try await Processes.command(["plan", spec])
        #expect(guessed.status == 0, "\(guessed.err)")
        #expect(guessed.out.components(separatedBy: "$0.336").count - 1 == 5 + 0, "\(guessed.out)")
        #expect(guessed.out.components(separatedBy: "(price unknown)").count - 1 == 2)
        #expect(guessed.out.contains("$1.68"), "5 × 3 s × $0.112 = $1.68: \(guessed.out)")
        #expect(guessed.err.contains("price unknown for \(Self.standard): counted at the highest known price, $0.112/s"), "\(guessed.err)")

        let priced = try await Processes.command(["plan", spec, "--price", "\(Self.standard)=0.084", "--json"])
        let json = try JSONValue.parse(Data(priced.out.utf8))
        let costs = json["jobs"]?.arrayValue?.map { $0["cost_usd"]?.doubleValue ?? -1 } ?? []
        #expect(costs == [0.336, 0.336, 0.336, 0.252, 0.252])
        #expect(json["totals"]?["cost_micros"] == .int(3 * 336_000 + 2 * 252_000))
        #expect(json["unpriced_endpoints"] == [])

        try "prices:\n  \(Self.standard): 0.084\n".write(toFile: folder.path + "/config.yaml", atomically: true, encoding: .utf8)
        let configured = try await Processes.command(["plan", spec, "--config", folder.path + "/config.yaml"])
        #expect(configured.out.contains("$0.252") && configured.out.contains("$1.512") && !configured.out.contains("unknown"), "\(configured.out)")
    }

    @Test("a run says once, not once per job, that an endpoint has no price, and budgets it at the highest known one")
    func warnsOnce() async throws {
        let folder = try TemporaryDirectory("run-prices")
        defer { folder.remove() }
        _ = try writeSpec(folder)
        var environment = Processes.environment()
        environment["HOME"] = folder.path
        environment.removeValue(forKey: "XDG_STATE_HOME")
        let run = try ChildProcess("kling-batch", [
            "run", "--once", "--simulate", "--state-dir", folder.path + "/state", "--out", folder.path + "/out", folder.path + "/jobs/mix.yaml",
        ], environment: environment)
        #expect(await run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        #expect(run.stderr.components(separatedBy: "no price is known for \(Self.standard)").count - 1 == 1, "\(run.stderr)")
        let listed = try await Processes.command(["list", "--json", "--simulate", "--state-dir", folder.path + "/state"], environment: environment)
        let costs = try JSONValue.parse(Data(listed.out.utf8)).arrayValue?.map { $0["estimated_cost_usd"]?.doubleValue ?? -1 } ?? []
        #expect(costs == Array(repeating: 0.336, count: 5), "\(listed.out) \(listed.err)")
    }
}
