import FalEmulator
import Foundation
import KlingCore
import Testing
import TestSupport

/// Every dollar accounted for: `report` against the manifests, prices per endpoint, and fal's submit options on
/// the wire and in the manifest, with the daemon and the CLI as separate processes.
@Suite("Accounting: report, prices, submit options", .serialized, .timeLimit(.minutes(5)))
struct AccountingTests {
    static let standard = "fal-ai/kling-video/o1/standard/reference-to-video"

    /// A batch file of `jobs` jobs of `seconds` each (on `endpoint` when given), moved into `<folder>/jobs`.
    func drop(_ folder: TemporaryDirectory, name: String, jobs: Int, seconds: Int = 5, endpoint: String? = nil, priority: String? = nil) throws {
        let stage = folder.url.appendingPathComponent("stage")
        try FileManager.default.createDirectory(at: stage, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: folder.path + "/jobs/refs", withIntermediateDirectories: true)
        try SpecWriter.png(salt: name).write(to: URL(fileURLWithPath: folder.path + "/jobs/refs/\(name).png"))
        var text = "defaults: {duration: \(seconds), aspect_ratio: \"16:9\"\(endpoint.map { ", endpoint: \($0)" } ?? "")\(priority.map { ", queue_priority: \($0)" } ?? "")}\njobs:\n"
        for index in 0..<jobs { text += "  - {name: shot-\(index), prompt: \"@Image1 turns, take \(index)\", image_urls: [refs/\(name).png]}\n" }
        try text.write(to: stage.appendingPathComponent("\(name).yaml"), atomically: true, encoding: .utf8)
        try FileManager.default.moveItem(atPath: stage.path + "/\(name).yaml", toPath: folder.path + "/jobs/\(name).yaml")
    }

    /// `kling-batch report --json` on the test's store, with more arguments.
    func report(_ folder: TemporaryDirectory, _ arguments: [String] = []) async throws -> JSONValue {
        let result = try await Processes.command(["report", "--json", "--state-dir", folder.path + "/state"] + arguments)
        #expect(result.status == 0, "\(result.err)")
        return try JSONValue.parse(Data(result.out.utf8))
    }

    /// Every manifest in the output tree.
    func manifests(_ folder: TemporaryDirectory) throws -> [JSONValue] {
        try Processes.files(in: folder.path + "/out", suffix: ".json").map { try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: folder.path + "/out/" + $0))) }
    }

    @Test("a mixed run (completed, failed after submit, cancelled at fal, a possible duplicate, two endpoints at their own prices): report equals the manifests' costs to the micro-dollar, before and after purge; the submit options reach fal and the manifests")
    func reportEqualsManifests() async throws {
        let folder = try TemporaryDirectory("accounting")
        defer { folder.remove() }
        try FileManager.default.createDirectory(atPath: folder.path + "/jobs", withIntermediateDirectories: true)
        try """
            prices:
              \(Self.standard): 0.084
            output_lifetime: 3d
            queue_priority: low
            start_timeout: 10m
            """.write(toFile: folder.path + "/config.yaml", atomically: true, encoding: .utf8)
        let emulator = try await EmulatorProcess(["--hold", "--run-seconds", "0.1"])
        let daemon = try Processes.daemon(emulator, folder: folder, extra: [
            "--config", folder.path + "/config.yaml", "--reconcile-grace", "1s", "--reconcile-interval", "200ms", "--concurrency", "10",
        ])
        await daemon.waitForStderr("watching ")
        // The first submit's connection is cut after fal read it but before a request was made: the submit is
        // reconciled, not found, and sent again after the 1 s grace, flagged as a possible duplicate.
        try await emulator.configure { $0.faults = [FaultRule(kind: .connectionReset, probability: 1, routes: [.submit], limit: 1)] }
        try drop(folder, name: "lost", jobs: 1)
        await daemon.waitForStderr("submitted (attempt", count: 1)
        try await emulator.configure { $0.faults = [] }
        try drop(folder, name: "mixed", jobs: 3)
        await daemon.waitForStderr("submitted (attempt", count: 4)
        let cancelled = try await Processes.command(["cancel", "mixed/shot-2", "--state-dir", folder.path + "/state"])
        #expect(cancelled.status == 0, "\(cancelled.err)")
        // The next submit is rejected by the model after it ran (billed, failed after submit).
        try await emulator.configure { $0.faults = [FaultRule(kind: .jobRejected, probability: 1, routes: [.submit], limit: 1)] }
        try drop(folder, name: "rejected", jobs: 1, priority: "normal")
        await daemon.waitForStderr("submitted (attempt", count: 5)
        try await emulator.configure { $0.faults = [] }
        try drop(folder, name: "standard", jobs: 2, seconds: 10, endpoint: Self.standard)
        await daemon.waitForStderr("submitted (attempt", count: 7)
        _ = try await emulator.releaseRequests()
        await daemon.waitForStderr("completed:", count: 5)
        await daemon.waitForStderr("failed: ")

        let manifests = try manifests(folder)
        #expect(manifests.count == 7)
        let manifestMicros = manifests.reduce(Int64(0)) { $0 + ($1["cost"]?["micros"]?.intValue ?? 0) }
        let byState = Dictionary(grouping: manifests) { $0["state"]?.stringValue ?? "?" }.mapValues { $0.reduce(Int64(0)) { $0 + ($1["cost"]?["micros"]?.intValue ?? 0) } }
        // 2 completed 5 s jobs and the lost-then-resent one (paid twice, perhaps) at $0.112/s; 2 completed 10 s jobs
        // at $0.084/s; one cancelled at fal and one rejected after it ran, 5 s each.
        let expected: [String: Int64] = ["completed": 4 * 560_000 + 2 * 840_000, "cancelled": 560_000, "failed": 560_000]
        #expect(byState == expected)
        let before = try await report(folder)
        let totals = before["totals"]
        #expect(totals?["committed_micros"]?.intValue == manifestMicros)
        #expect(totals?["submissions"]?.intValue == 8 && totals?["jobs"]?.intValue == 7 && totals?["possible_duplicates"]?.intValue == 1)
        #expect(totals?["completed_usd"]?.doubleValue == 3.92 && totals?["cancelled_at_fal_usd"]?.doubleValue == 0.56)
        #expect(totals?["failed_after_submit_usd"]?.doubleValue == 0.56 && totals?["open_usd"]?.doubleValue == 0)
        let endpoints = try await report(folder, ["--by", "endpoint"])["groups"]?.arrayValue ?? []
        #expect(endpoints.map { $0["key"]?.stringValue ?? "" } == ["fal-ai/kling-video/o1/reference-to-video", Self.standard])
        #expect(endpoints.map { $0["committed_micros"]?.intValue ?? 0 } == [6 * 560_000, 2 * 840_000])
        let standardManifest = manifests.first { $0["endpoint"]?.stringValue == Self.standard }
        #expect(standardManifest?["cost"]?["price_per_second_usd"]?.doubleValue == 0.084 && standardManifest?["cost"]?["price_known"] == true)

        // The options reached fal on every submit, and each manifest says what was sent.
        let counters = try await emulator.counters()
        // 8 submit calls; the one whose connection was cut after its body was read never reached fal's handler.
        #expect(counters.submitCalls == 8 && counters.requestsCreated == 7)
        #expect(counters.submitHeaders["X-Fal-Queue-Priority: low"] == 6, "\(counters.submitHeaders)")
        #expect(counters.submitHeaders["X-Fal-Queue-Priority: normal"] == 1, "the batch's own queue_priority wins over the setting")
        #expect(counters.submitHeaders["X-Fal-Request-Timeout: 600"] == counters.requestsCreated)
        #expect(counters.submitHeaders["X-Fal-Object-Lifecycle-Preference: {\"expiration_duration_seconds\": 259200}"] == counters.requestsCreated)
        #expect(counters.duplicateSubmissions == 0)
        for manifest in manifests {
            let priority: JSONValue = manifest["batch"] == "rejected" ? "normal" : "low"
            #expect(manifest["submit_options"] == ["output_lifetime_seconds": 259_200, "queue_priority": priority, "start_timeout_seconds": 600])
        }

        // purge forgets the jobs; the ledger, and so the report, stays to the micro-dollar.
        daemon.signal(SIGTERM)
        #expect(await daemon.waitForExit() == 0)
        let purged = try await Processes.command(["purge", "--older-than", "0s", "--state-dir", folder.path + "/state"])
        #expect(purged.status == 0 && purged.out.contains("forgot 7 finished jobs"), "\(purged.out) \(purged.err)")
        #expect(try await report(folder) == before)
        let csv = try await Processes.command(["report", "--csv", "--by", "state", "--state-dir", folder.path + "/state"])
        #expect(csv.out.split(separator: "\n").first == "state,jobs,submissions,seconds,committed_usd,completed_usd,failed_after_submit_usd,cancelled_at_fal_usd,open_usd,possible_duplicates")
        #expect(csv.out.contains("\n(total),7,8,50,5.04,3.92,0.56,0.56,0.00,1"), "\(csv.out)")
        await emulator.stop()
    }
}

/// A video that is not what was paid for is kept, flagged and never paid for again.
@Suite("Checking what came back", .serialized, .timeLimit(.minutes(5)))
struct VideoReviewTests {
    @Test("--wrong-duration 0.5: about half the videos are flagged needs_review with the reason, every job completes with exactly 1 submission, list --flagged finds them")
    func wrongDuration() async throws {
        let folder = try TemporaryDirectory("review")
        defer { folder.remove() }
        let emulator = try await EmulatorProcess(["--run-seconds", "0.05", "--wrong-duration", "0.5"])
        let specs = try SpecWriter.writeJobs(count: 30, in: folder.url.appendingPathComponent("jobs"), sharedImages: 1)
        #expect(specs.count == 30)
        let run = try Processes.runOnce(emulator, state: folder.path + "/state", out: folder.path + "/out", jobs: folder.path + "/jobs", extra: ["--quiet"])
        #expect(await run.waitForExit() == 0, "\(run.stdout) \(run.stderr.suffix(2000))")
        let counters = try await emulator.counters()
        #expect(counters.requestsCreated == 30 && counters.submissionsPerBody.values.allSatisfy { $0 == 1 } && counters.duplicateSubmissions == 0)
        let listed = try await Processes.command(["list", "--state", "completed", "--flagged", "--json", "--state-dir", folder.path + "/state"])
        let flagged = try JSONValue.parse(Data(listed.out.utf8)).arrayValue ?? []
        #expect((8...22).contains(flagged.count), "about half of 30: \(flagged.count)")
        #expect(flagged.allSatisfy { $0["needs_review"]?.stringValue?.contains("were paid for") == true }, "\(flagged.first ?? .null)")
        #expect(run.stdout.components(separatedBy: "  needs review ").count - 1 == flagged.count, "--quiet still tells: \(run.stdout)")
        var manifestsFlagged = 0
        for name in Processes.files(in: folder.path + "/out", suffix: ".json") {
            let manifest = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: folder.path + "/out/" + name)))
            #expect(manifest["state"] == "completed" && manifest["cost"]?["submissions"] == 1)
            let video = try MP4Summary.read(fileAt: try #require(manifest["video"]?["path"]?.stringValue))
            let off = abs(video.durationSeconds - Double(manifest["duration_seconds"]?.intValue ?? 0)) > 0.5
            #expect(off == (manifest["needs_review"] != .null), "\(name): \(video)")
            if off { manifestsFlagged += 1 }
        }
        #expect(manifestsFlagged == flagged.count)
        await emulator.stop()
    }
}
