import AsyncHTTPClient
import FalEmulator
import Foundation
import KlingCore
import Testing
import TestSupport

/// The operator's commands as separate processes against a store that a running daemon is changing.
@Suite("Operating a running daemon", .serialized, .timeLimit(.minutes(5)))
struct OperatorTests {
    struct Setup {
        let folder: TemporaryDirectory
        let emulator: EmulatorProcess
        var common: [String] { ["--state-dir", folder.path + "/state"] }
    }

    var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["FAL_KEY"] = "operator-test-key"
        for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM", "KLING_BATCH_TEST_CRASH", "KLING_BATCH_CONFIG"] { environment.removeValue(forKey: name) }
        return environment
    }

    func daemon(_ setup: Setup, _ extra: [String] = []) throws -> ChildProcess {
        try ChildProcess("kling-batch", [
            "daemon", "--fal-url", setup.emulator.url.absoluteString, "--jobs", setup.folder.path + "/jobs", "--out", setup.folder.path + "/out",
            "--settle", "100ms", "--config", setup.folder.path + "/config.yaml",
        ] + setup.common + extra, environment: environment)
    }

    /// Runs a command to its end; returns its exit status and stdout.
    func command(_ setup: Setup, _ arguments: [String], fal: Bool = false) async throws -> (status: Int32, out: String, err: String) {
        let extra = fal ? ["--fal-url", setup.emulator.url.absoluteString] : []
        let child = try ChildProcess("kling-batch", arguments + setup.common + extra, environment: environment)
        let status = await child.waitForExit()
        return (status, child.stdout, child.stderr)
    }

    func json(_ setup: Setup, _ arguments: [String]) async throws -> JSONValue {
        let (status, out, err) = try await command(setup, arguments + ["--json"])
        #expect(status == 0, "\(arguments): \(err)")
        return try JSONValue.parse(Data(out.utf8))
    }

    /// Five-second jobs in one batch file, with their images, moved into the jobs folder.
    func dropBatch(_ setup: Setup, name: String, jobs: Int) throws {
        let stage = setup.folder.url.appendingPathComponent("stage-\(name)")
        try FileManager.default.createDirectory(at: stage, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: setup.folder.path + "/jobs/refs", withIntermediateDirectories: true)
        try SpecWriter.png(salt: name).write(to: URL(fileURLWithPath: setup.folder.path + "/jobs/refs/\(name).png"))
        var text = "defaults: {duration: 5, aspect_ratio: \"16:9\"}\njobs:\n"
        for index in 0..<jobs { text += "  - {name: shot-\(index), prompt: \"@Image1 slowly turns, take \(index)\", image_urls: [refs/\(name).png]}\n" }
        try text.write(to: stage.appendingPathComponent("\(name).yaml"), atomically: true, encoding: .utf8)
        try FileManager.default.moveItem(atPath: stage.path + "/\(name).yaml", toPath: setup.folder.path + "/jobs/\(name).yaml")
    }

    func withSetup(_ label: String, emulator arguments: [String], config: String = "", _ body: (Setup) async throws -> Void) async throws {
        let folder = try TemporaryDirectory(label)
        defer { folder.remove() }
        try FileManager.default.createDirectory(atPath: folder.path + "/jobs", withIntermediateDirectories: true)
        try config.write(toFile: folder.path + "/config.yaml", atomically: true, encoding: .utf8)
        let emulator = try await EmulatorProcess(arguments)
        try await body(Setup(folder: folder, emulator: emulator))
        await emulator.stop()
    }

    @Test("status, list, show, retry and purge read and change the store while the daemon runs")
    func commands() async throws {
        try await withSetup("ops", emulator: ["--run-seconds", "0.2", "--queue-seconds", "0.05", "--fault", "job-failure=1#2"]) { setup in
            let daemon = try daemon(setup, ["--max-attempts", "1"])
            await daemon.waitForStderr("watching ")
            try dropBatch(setup, name: "teasers", jobs: 4)
            await daemon.waitForStderr("completed:", count: 2)
            await daemon.waitForStderr("failed:", count: 2)

            let status = try await json(setup, ["status"])
            #expect(status["counts"]?["completed"] == .int(2))
            #expect(status["counts"]?["failed"] == .int(2))
            #expect(status["runner"]?["kind"] == .string("daemon"))
            #expect(status["spend_today_usd"]?.doubleValue ?? 0 >= 1.12)

            let list = try await json(setup, ["list"])
            guard case .array(let jobs) = list else { Issue.record("list --json is not an array: \(list)"); return }
            #expect(jobs.count == 4)
            let failed = jobs.filter { $0["state"] == .string("failed") }.compactMap { $0["name"]?.stringValue }
            #expect(failed.count == 2 && failed.allSatisfy { $0.hasPrefix("teasers/shot-") }, "\(failed)")

            let table = try await command(setup, ["list", "--state", "completed"])
            let rows = table.out.split(separator: "\n")
            #expect(rows.first?.contains("JOB") == true && rows.first?.contains("STATE") == true, "\(table.out)")
            #expect(rows.filter { $0.contains("teasers/shot-") && $0.contains("completed") && $0.contains("$0.56") }.count == 2, "\(table.out)")

            let show = try await json(setup, ["show", failed[0]])
            #expect(show["state"] == .string("failed"))
            guard case .array(let attempts) = show["attempts"] else { Issue.record("no attempts in show: \(show)"); return }
            #expect(attempts.count == 1 && attempts[0]["outcome"] == .string("failed_at_fal"), "\(attempts)")
            let runner = attempts.first?["attempted_by"]?.stringValue ?? ""
            #expect(runner.wholeMatch(of: /.+-[0-9a-f]{6}/) != nil, "the attempt names its runner: \(attempts)")
            let shownText = try await command(setup, ["show", failed[0]])
            #expect(shownText.out.contains("failed_at_fal") && shownText.out.contains(" by \(runner)"), "\(shownText.out)")
            let shown = try await command(setup, ["show", "teasers/shot"])
            #expect(shown.status != 0 && shown.err.contains("matches 4 jobs"), "\(shown.err)")
            let unknown = try await command(setup, ["show", "teasers/nope"])
            #expect(unknown.status != 0 && unknown.err.contains("batch teasers has:"), "\(unknown.err)")

            let retried = try await command(setup, ["retry", "--failed"])
            #expect(retried.status == 0 && retried.out.contains("requeued teasers/shot-"), "\(retried.out + retried.err)")
            #expect(retried.out.contains("told the daemon (pid \(daemon.pid))"), "\(retried.out)")
            await daemon.waitForStderr("completed:", count: 4)
            let after = try await json(setup, ["status"])
            #expect(after["counts"]?["completed"] == .int(4))
            let history = try await json(setup, ["show", failed[0]])
            guard case .array(let allAttempts) = history["attempts"] else { return }
            #expect(allAttempts.count == 2, "the first attempt is kept: \(allAttempts)")
            #expect(allAttempts.map { $0["attempted_by"] } == [.string(runner), .string(runner)], "one daemon sent both")

            let purged = try await command(setup, ["purge", "--older-than", "0s"])
            #expect(purged.out.contains("forgot 4 finished jobs"), "\(purged.out + purged.err)")
            #expect(try await json(setup, ["list"]) == .array([]))
            let videos = try FileManager.default.subpathsOfDirectory(atPath: setup.folder.path + "/out").filter { $0.hasSuffix(".mp4") }
            #expect(videos.count == 4, "purge never deletes videos")

            daemon.signal(SIGTERM)
            #expect(await daemon.waitForExit() == 0)
        }
    }

    @Test("budget $2.00, ten $0.56 jobs at once at concurrency 10: 3 submitted, 7 held with the reason; raising it with SIGHUP releases them")
    func budget() async throws {
        try await withSetup("budget", emulator: ["--run-seconds", "0.2", "--queue-seconds", "0.05"], config: "max_spend_per_day: 2.00\nconcurrency: 10\n") { setup in
            let daemon = try daemon(setup)
            await daemon.waitForStderr("watching ")
            try dropBatch(setup, name: "ten", jobs: 10)
            await daemon.waitForStderr("held: over the daily budget", count: 7)
            await daemon.waitForStderr("completed:", count: 3)
            let status = try await json(setup, ["status"])
            #expect(status["counts"]?["held"] == .int(7), "\(status)")
            #expect(status["counts"]?["completed"] == .int(3))
            #expect(status["spend_today_usd"]?.doubleValue == 1.68)
            let reasons = status["paused_reasons"].map { "\($0)" } ?? ""
            #expect(reasons.contains("over the daily budget"), "\(reasons)")
            let held = try await command(setup, ["list", "--state", "held", "--json"])
            #expect(held.out.contains("over the daily budget: $1.68 of $2.00"), "\(held.out)")
            #expect(try await setup.emulator.counters().requestsCreated == 3)

            // A broken config on reload is refused and the running settings stay: still 7 held, nothing submitted.
            try "max_spend_per_dya: 10\n".write(toFile: setup.folder.path + "/config.yaml", atomically: true, encoding: .utf8)
            daemon.signal(SIGHUP)
            await daemon.waitForStderr("reload failed, keeping the current settings")
            #expect(daemon.stderr.contains("did you mean `max_spend_per_day`"), "\(daemon.stderr.suffix(1000))")
            #expect(try await setup.emulator.counters().requestsCreated == 3)

            try "max_spend_per_day: 10\nconcurrency: 10\n".write(toFile: setup.folder.path + "/config.yaml", atomically: true, encoding: .utf8)
            daemon.signal(SIGHUP)
            await daemon.waitForStderr("completed:", count: 10)
            #expect(try await setup.emulator.counters().requestsCreated == 10)
            #expect(daemon.stderr.contains("reloaded the configuration: budget per day $2.00 → $10.00"), "\(daemon.stderr.suffix(2000))")
            daemon.signal(SIGTERM)
            #expect(await daemon.waitForExit() == 0)
        }
    }

    @Test("a job cancelled while IN_QUEUE at fal ends cancelled, fal saw the cancel, and nothing is downloaded; cancel finds the daemon's --fal-url in the store, not in a flag repeated by hand")
    func cancel() async throws {
        try await withSetup("cancel", emulator: ["--hold", "--run-seconds", "0.1"]) { setup in
            let daemon = try daemon(setup)
            await daemon.waitForStderr("watching ")
            try dropBatch(setup, name: "held", jobs: 2)
            await daemon.waitForStderr("submitted (attempt", count: 2)
            let cancelled = try await command(setup, ["cancel", "held/shot-0"])  // no --fal-url: the store says where its runner sends
            #expect(cancelled.status == 0, "\(cancelled.err) / daemon: \(daemon.stderr.suffix(1500))")
            #expect(cancelled.out.contains("cancelled held/shot-0: fal cancelled request"), "\(cancelled.out)")

            var release = HTTPClientRequest(url: setup.emulator.url.absoluteString + "/_emulator/release")
            release.method = .POST
            _ = try await HTTPClient.shared.execute(release, timeout: .seconds(10))
            await daemon.waitForStderr("completed:", count: 1)

            let late = try await command(setup, ["cancel", "held/shot-1"])
            #expect(late.status != 0 && late.err.contains("held/shot-1: not cancelled, already completed"), "\(late.err)")
            let again = try await command(setup, ["cancel", "held/shot-0"])
            #expect(again.status != 0 && again.err.contains("already cancelled"), "\(again.err)")

            let shown = try await json(setup, ["show", "held/shot-0"])
            #expect(shown["state"] == .string("cancelled"))
            #expect(shown["video"] == .null)
            let manifest = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: shown["manifest"]?.stringValue ?? "/nonexistent")))
            #expect(manifest["state"] == .string("cancelled"))
            let counters = try await setup.emulator.counters()
            #expect(counters.cancelsApplied == 1)
            #expect(counters.videoDownloads == 1, "only the job that was not cancelled is downloaded")

            // Retried after the cancel, its second attempt is #2 everywhere: the log, list, show and the manifest.
            let retried = try await command(setup, ["retry", "held/shot-0"])
            #expect(retried.status == 0, "\(retried.err)")
            // What the operator did in other processes is in the daemon's log too, so its journal tells the whole story.
            await daemon.waitForStderr(where: { log in
                log.split(separator: "\n").contains { $0.contains("job=held/shot-0") && $0.contains("cancelled by an operator") }
            })
            await daemon.waitForStderr(where: { log in
                log.split(separator: "\n").contains { $0.contains("job=held/shot-0") && $0.contains("requeued by an operator") }
            })
            await daemon.waitForStderr("submitted (attempt", count: 3)
            _ = try await HTTPClient.shared.execute(release, timeout: .seconds(10))
            await daemon.waitForStderr("completed:", count: 2)
            #expect(daemon.stderr.split(separator: "\n").contains { $0.contains("job=held/shot-0") && $0.contains("submitted (attempt 2,") },
                    "\(daemon.stderr.suffix(3000))")
            let listed = try await json(setup, ["list", "--batch", "held"])
            let listedShot = listed.arrayValue?.first { $0["job"] == .string("shot-0") }
            #expect(listedShot?["attempts"] == JSONValue.int(2))
            let retriedShown = try await json(setup, ["show", "held/shot-0"])
            #expect(retriedShown["attempts"]?.arrayValue?.last?["number"] == .int(2))
            let final = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: retriedShown["manifest"]?.stringValue ?? "/nonexistent")))
            #expect(final["state"] == .string("completed"))
            #expect(final["attempts"]?.arrayValue?.last?["number"] == .int(2))
            daemon.signal(SIGTERM)
            #expect(await daemon.waitForExit() == 0)
        }
    }

    @Test("/metrics parses as Prometheus text and matches the store; /healthz answers 200")
    func metrics() async throws {
        try await withSetup("metrics", emulator: ["--run-seconds", "0.1", "--queue-seconds", "0.05"]) { setup in
            let daemon = try daemon(setup, ["--http", "127.0.0.1:0"])
            await daemon.waitForStderr("watching ")
            await daemon.waitForStderr("metrics listening on ")
            let line = daemon.stderr.split(separator: "\n").first { $0.contains("metrics listening on ") }.map(String.init) ?? ""
            let base = line.components(separatedBy: "metrics listening on ").last?.components(separatedBy: "/metrics").first ?? ""
            try dropBatch(setup, name: "seen", jobs: 5)
            await daemon.waitForStderr("completed:", count: 5)

            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: base + "/metrics"), timeout: .seconds(10))
            #expect(response.status == .ok)
            let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
            var samples: [String: Double] = [:]
            var types: [String: String] = [:]
            for line in text.split(separator: "\n") {
                if line.hasPrefix("# TYPE ") {
                    let parts = line.split(separator: " ")
                    #expect(parts.count == 4, "bad TYPE line: \(line)")
                    types[String(parts[2])] = String(parts[3])
                    continue
                }
                if line.hasPrefix("#") { continue }
                guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                    Issue.record("not a Prometheus sample line: \(line)")
                    continue
                }
                let name = String(line[..<space])
                #expect(name.range(of: #"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})?$"#, options: .regularExpression) != nil, "bad sample name: \(name)")
                samples[name] = value
            }
            let store = try await json(setup, ["status"])
            for state in ["completed", "queued", "failed", "held"] {
                let stored = store["counts"]?[state].flatMap { if case .int(let n) = $0 { Double(n) } else { nil } }
                #expect(samples["kling_batch_jobs{state=\"\(state)\"}"] == stored, "\(state)")
            }
            #expect(samples["kling_batch_submissions_total"] == 5)
            #expect(samples["kling_batch_downloaded_bytes_total"] ?? 0 > 0)
            #expect(samples["kling_batch_spent_usd_total"] == store["spend_total_usd"]?.doubleValue)
            #expect(types["kling_batch_fal_request_duration_seconds"] == "histogram", "\(types)")
            #expect(samples.keys.contains { $0.hasPrefix("kling_batch_fal_request_duration_seconds_bucket{") && $0.contains("operation=\"status\"") })

            let health = try await HTTPClient.shared.execute(HTTPClientRequest(url: base + "/healthz"), timeout: .seconds(10))
            #expect(health.status == .ok)
            daemon.signal(SIGTERM)
            #expect(await daemon.waitForExit() == 0)
        }
    }
}
