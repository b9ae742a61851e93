import FalEmulator
import Foundation
import KlingCore
import Testing
import TestSupport

/// One spec file of templates, a matrix, takes and CSV rows, run for real: every expanded job is a video and a
/// manifest, and priorities decide the order fal sees.
@Suite("Expanded specs end to end", .serialized, .timeLimit(.minutes(5)))
struct ExpansionEndToEndTests {
    /// Every manifest under `folder`, parsed.
    func manifests(_ folder: String) throws -> [JSONValue] {
        try Processes.files(in: folder, suffix: ".json").map { try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: folder + "/" + $0))) }
    }

    @Test("matrix × takes × CSV through run --once --simulate: one video and one manifest per expanded job, each with its meta")
    func matrixTakesRows() async throws {
        let folder = try TemporaryDirectory("expand-e2e")
        defer { folder.remove() }
        let jobs = folder.path + "/jobs"
        try FileManager.default.createDirectory(atPath: jobs + "/refs", withIntermediateDirectories: true)
        try SpecWriter.png(salt: "expand").write(to: URL(fileURLWithPath: jobs + "/refs/style.png"))
        try "subject,shot\n\"The tower, at dawn\",12\nThe bridge in rain,13\n".write(toFile: jobs + "/shots.csv", atomically: true, encoding: .utf8)
        try """
            defaults: {duration: 3}
            vars: {style: refs/style.png}
            matrix:
              aspect_ratio: ["16:9", "9:16"]
            takes: 2
            rows: shots.csv
            meta: {client: acme, shot: "{shot}", take: "{take}"}
            jobs:
              - name: "shot-{shot}-{aspect_ratio}-{take}"
                prompt: "{subject}, in the style of @Image1"
                image_urls: ["{style}"]
            """.write(toFile: jobs + "/campaign.yaml", atomically: true, encoding: .utf8)
        var environment = Processes.environment()
        environment["HOME"] = folder.path
        environment.removeValue(forKey: "FAL_KEY")
        let plan = try await Processes.command(["plan", jobs + "/campaign.yaml"], environment: environment)
        #expect(plan.status == 0 && plan.out.contains("1 job template × 2 rows of shots.csv × 2 aspect_ratio × 2 takes = 8 jobs"), "\(plan.out)\(plan.err)")
        let run = try ChildProcess("kling-batch", [
            "run", "--once", "--simulate", "--state-dir", folder.path + "/state", "--out", folder.path + "/out", jobs + "/campaign.yaml",
        ], environment: environment)
        #expect(await run.waitForExit() == 0, "\(run.stderr.suffix(3000))")

        let videos = Processes.files(in: folder.path + "/out", suffix: ".mp4")
        let found = try manifests(folder.path + "/out")
        #expect(videos.count == 8 && found.count == 8, "\(videos)")
        let names = Set(found.compactMap { $0["job"]?.stringValue })
        #expect(names == Set(["12", "13"].flatMap { shot in ["16-9", "9-16"].flatMap { ratio in ["1", "2"].map { "shot-\(shot)-\(ratio)-\($0)" } } }))
        for manifest in found {
            let name = manifest["job"]?.stringValue ?? ""
            let parts = name.split(separator: "-")
            let expected: JSONValue = ["client": "acme", "shot": .string(String(parts[1])), "take": .string(String(parts.last ?? ""))]
            #expect(manifest["meta"] == expected, "\(name): \(manifest["meta"] ?? .null)")
            #expect(manifest["state"] == "completed")
        }
    }

    @Test("priorities from a CSV column: fal receives high before normal before low, and only low jobs ask for fal's low queue")
    func priorityOrder() async throws {
        let folder = try TemporaryDirectory("expand-priority")
        defer { folder.remove() }
        let jobs = folder.path + "/jobs"
        try FileManager.default.createDirectory(atPath: jobs + "/refs", withIntermediateDirectories: true)
        try SpecWriter.png(salt: "priority").write(to: URL(fileURLWithPath: jobs + "/refs/a.png"))
        let rows = ["low", "normal", "high", "low", "high", "normal", "low", "high"]
        try ("shot,priority\n" + rows.enumerated().map { "\($0.offset + 1),\($0.element)\n" }.joined())
            .write(toFile: jobs + "/order.csv", atomically: true, encoding: .utf8)
        try """
            rows: order.csv
            name: "shot-{shot}"
            prompt: "shot {shot} of @Image1"
            image_urls: [refs/a.png]
            duration: 3
            """.write(toFile: jobs + "/order.yaml", atomically: true, encoding: .utf8)
        let emulator = try await EmulatorProcess(["--queue-seconds", "0", "--run-seconds", "0"])
        let run = try Processes.runOnce(emulator, state: folder.path + "/state", out: folder.path + "/out", jobs: jobs + "/order.yaml",
                                        extra: ["--concurrency", "1"])
        #expect(await run.waitForExit() == 0, "\(run.stderr.suffix(3000))")

        let byRequest = Dictionary(uniqueKeysWithValues: try manifests(folder.path + "/out").compactMap { manifest -> (String, String)? in
            guard let id = manifest["request_id"]?.stringValue, let name = manifest["job"]?.stringValue else { return nil }
            return (id, name)
        })
        let order = try await emulator.requests().compactMap { byRequest[$0.requestID] }
        let priorityOf = Dictionary(uniqueKeysWithValues: rows.enumerated().map { ("shot-\($0.offset + 1)", $0.element) })
        #expect(order.count == 8)
        #expect(order.map { priorityOf[$0] ?? "?" } == ["high", "high", "high", "normal", "normal", "low", "low", "low"], "\(order)")
        #expect(order == ["shot-3", "shot-5", "shot-8", "shot-2", "shot-6", "shot-1", "shot-4", "shot-7"], "first in, first out within a level")
        let counters = try await emulator.counters()
        #expect(counters.submitHeaders["X-Fal-Queue-Priority: low"] == 3, "\(counters.submitHeaders)")
        #expect(counters.requestsCreated == 8 && counters.duplicateSubmissions == 0)
        let shown = try await Processes.command(["show", "order/shot-1", "--state-dir", folder.path + "/state"])
        #expect(shown.out.contains("priority:   low"), "\(shown.out)")
    }
}
