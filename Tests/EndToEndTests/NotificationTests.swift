import FalEmulator
import Foundation
import KlingCore
import Testing
import TestSupport

/// The daemon and `run --once` tell a receiver what happened: from the outbox, at least once, by a stable id,
/// signed, and whatever fails in between (the receiver, our own process).
@Suite("Notifications", .serialized, .timeLimit(.minutes(5)))
struct NotificationTests {
    /// A config file with one URL target (and its secret) plus `extra` settings.
    func config(
        _ folder: TemporaryDirectory, receiver: WebhookReceiver, secret: String? = "hook-secret", retry: String = "100ms", extra: String = ""
    ) throws -> String {
        let path = folder.path + "/config.yaml"
        try """
            notify:
              - url: \(receiver.url.absoluteString)
            \(secret.map { "    secret: \($0)" } ?? "")
            notify_retry: \(retry)
            \(extra)
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A batch of `count` 3 s jobs named `shot-N` in `<folder>/jobs/<name>.yaml`.
    func batch(_ folder: TemporaryDirectory, name: String, count: Int) throws -> String {
        let jobs = folder.path + "/jobs"
        try FileManager.default.createDirectory(atPath: jobs + "/refs", withIntermediateDirectories: true)
        try SpecWriter.png(salt: name).write(to: URL(fileURLWithPath: jobs + "/refs/a.png"))
        let path = jobs + "/\(name).yaml"
        try "takes: \(count)\nname: \"shot-{take}\"\nprompt: \"@Image1, take {take}\"\nimage_urls: [refs/a.png]\nduration: 3\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("a batch of 10 with 2 failures: one batch.completed with the right counts and cost, two job.failed, every body signed")
    func batchCompleted() async throws {
        let folder = try TemporaryDirectory("notify-batch")
        defer { folder.remove() }
        let receiver = try await WebhookReceiver()
        defer { Task { await receiver.stop() } }
        let emulator = try await EmulatorProcess(["--queue-seconds", "0", "--run-seconds", "0"])
        try await emulator.configure { $0.faults = [FaultRule(kind: .jobRejected, probability: 1, routes: [.submit], limit: 2)] }
        let spec = try batch(folder, name: "ten", count: 10)
        let run = try Processes.runOnce(emulator, state: folder.path + "/state", out: folder.path + "/out", jobs: spec,
                                        extra: ["--config", try config(folder, receiver: receiver)])
        #expect(await run.waitForExit() == 1, "two jobs failed: \(run.stderr.suffix(2000))")
        await receiver.wait(for: 3)
        let received = await receiver.received
        #expect(received.count == 3, "\(received.map(\.type))")
        #expect(received.allSatisfy { $0.signatureVerifies(secret: "hook-secret") })
        #expect(Set(received.compactMap(\.eventID)).count == 3)
        let failed = received.filter { $0.type == "job.failed" }
        #expect(failed.count == 2)
        #expect(failed.allSatisfy { $0.json["data"]?["retry"] == "submit" && $0.json["data"]?["reason"]?.stringValue?.isEmpty == false })
        let completed = try #require(received.first { $0.type == "batch.completed" })
        let data = try #require(completed.json["data"])
        #expect(data["counts"] == ["completed": 8, "failed": 2, "cancelled": 0])
        #expect(data["seconds_of_video"] == 24 && data["jobs"] == 10)
        #expect(Set(data["failed_jobs"]?.arrayValue ?? []) == Set(failed.compactMap { $0.json["data"]?["job"] }))
        let manifests = try Processes.files(in: folder.path + "/out", suffix: ".json").map {
            try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: folder.path + "/out/" + $0)))
        }
        #expect(data["cost_micros"]?.intValue == manifests.reduce(0) { $0 + ($1["cost"]?["micros"]?.intValue ?? 0) })
        #expect(data["output"]?.stringValue?.hasPrefix(folder.path + "/out/") == true, "\(data)")
        #expect(completed.json["text"]?.stringValue?.contains("8 completed, 2 failed") == true)
    }

    @Test("a receiver answering 500 three times, then 200: delivered once it answers, with the same id on every try")
    func retriedUntilDelivered() async throws {
        let folder = try TemporaryDirectory("notify-retry")
        defer { folder.remove() }
        let receiver = try await WebhookReceiver(statuses: [500, 500, 500])
        defer { Task { await receiver.stop() } }
        let emulator = try await EmulatorProcess(["--queue-seconds", "0", "--run-seconds", "0"])
        let spec = try batch(folder, name: "one", count: 1)
        let run = try Processes.runOnce(emulator, state: folder.path + "/state", out: folder.path + "/out", jobs: spec,
                                        extra: ["--config", try config(folder, receiver: receiver, secret: nil)])
        #expect(await run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        await receiver.wait(for: 4)
        let received = await receiver.received
        #expect(received.map(\.status) == [500, 500, 500, 200])
        #expect(Set(received.compactMap(\.eventID)).count == 1 && received.allSatisfy { $0.type == "batch.completed" })
        #expect(received.allSatisfy { $0.headers["x-kling-batch-signature"] == nil })
        let status = try await Processes.command(["status", "--json", "--state-dir", folder.path + "/state"])
        #expect(try JSONValue.parse(Data(status.out.utf8))["notifications_undelivered"] == 0, "\(status.out)")
    }

    @Test("kill -9 after the batch's last job committed and before its event was delivered: delivered after the restart, same id")
    func survivesKill() async throws {
        let folder = try TemporaryDirectory("notify-kill")
        defer { folder.remove() }
        // The receiver refuses everything until the daemon has been killed.
        let receiver = try await WebhookReceiver(statuses: Array(repeating: 503, count: 10_000))
        defer { Task { await receiver.stop() } }
        let emulator = try await EmulatorProcess(["--queue-seconds", "0", "--run-seconds", "0"])
        let configPath = try config(folder, receiver: receiver, retry: "10m")
        let daemon = try Processes.daemon(emulator, folder: folder, extra: ["--config", configPath])
        await daemon.waitForStderr("watching ")
        _ = try batch(folder, name: "night", count: 2)
        await daemon.waitForStderr("completed:", count: 2)
        await receiver.wait(for: 1)
        daemon.signal(SIGKILL)
        _ = await daemon.waitForExit()
        let refused = await receiver.received
        #expect(refused.map(\.status) == [503] && refused.first?.type == "batch.completed")
        let status = try await Processes.command(["status", "--json", "--state-dir", folder.path + "/state"])
        #expect(try JSONValue.parse(Data(status.out.utf8))["notifications_undelivered"] == 1, "\(status.out)")

        // The receiver comes back (on a new port, so the config names it anew) and answers 200.
        await receiver.stop()
        let again = try await WebhookReceiver()
        defer { Task { await again.stop() } }
        try "notify:\n  - url: \(again.url.absoluteString)\n    secret: hook-secret\n".write(toFile: configPath, atomically: true, encoding: .utf8)
        let restarted = try Processes.daemon(emulator, folder: folder, extra: ["--config", configPath])
        await again.wait(for: 1)
        let delivered = await again.received
        #expect(delivered.count == 1 && delivered.first?.eventID == refused.first?.eventID && delivered.first?.status == 200)
        #expect(delivered.first?.signatureVerifies(secret: "hook-secret") == true)
        restarted.signal(SIGTERM)
        _ = await restarted.waitForExit()
    }

    @Test("a budget hold is told once per batch and day, however many jobs wait")
    func budgetHeld() async throws {
        let folder = try TemporaryDirectory("notify-budget")
        defer { folder.remove() }
        let receiver = try await WebhookReceiver()
        defer { Task { await receiver.stop() } }
        let emulator = try await EmulatorProcess(["--queue-seconds", "0", "--run-seconds", "0"])
        let spec = try batch(folder, name: "held", count: 4)
        let run = try Processes.runOnce(emulator, state: folder.path + "/state", out: folder.path + "/out", jobs: spec,
                                        extra: ["--config", try config(folder, receiver: receiver, extra: "max_spend_per_day: 0.5")])
        _ = await run.waitForExit()
        await receiver.wait(for: 1)
        let held = await receiver.received.filter { $0.type == "budget.held" }
        #expect(held.count == 1)
        #expect(held.first?.json["data"]?["budget"] == "day" && held.first?.json["data"]?["limit_micros"] == 500_000)
    }

    @Test("a refused key: submission.paused; SIGHUP with a good key: submission.resumed")
    func pausedAndResumed() async throws {
        let folder = try TemporaryDirectory("notify-key")
        defer { folder.remove() }
        let receiver = try await WebhookReceiver()
        defer { Task { await receiver.stop() } }
        let emulator = try await EmulatorProcess(["--queue-seconds", "0", "--run-seconds", "0", "--accept-key", "good-key-0123456789"])
        let keyFile = folder.path + "/fal-key"
        try "bad-key-0123456789\n".write(toFile: keyFile, atomically: true, encoding: .utf8)
        var environment = Processes.environment()
        environment.removeValue(forKey: "FAL_KEY")
        let daemon = try Processes.daemon(emulator, folder: folder, extra: [
            "--config", try config(folder, receiver: receiver), "--key-file", keyFile,
        ], environment: environment)
        await daemon.waitForStderr("watching ")
        _ = try batch(folder, name: "keyed", count: 1)
        await receiver.wait(for: 1)
        let paused = await receiver.received
        #expect(paused.map(\.type) == ["submission.paused"])
        #expect(paused.first?.json["data"]?["cause"] == "key" && paused.first?.json["data"]?["needs_operator"] == true)
        let body = String(decoding: paused.first?.body ?? [], as: UTF8.self)
        #expect(!body.contains("bad-key-0123456789"), "the key never leaves in an event")
        try "good-key-0123456789\n".write(toFile: keyFile, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        await receiver.wait(for: 2)
        let types = await receiver.received.map(\.type)
        #expect(types.prefix(2) == ["submission.paused", "submission.resumed"])
        daemon.signal(SIGTERM)
        _ = await daemon.waitForExit()
    }

    @Test("notify test sends a signed sample to each target and says which took it; config shows the secret's fingerprint only")
    func notifyTestAndConfig() async throws {
        let folder = try TemporaryDirectory("notify-test")
        defer { folder.remove() }
        let receiver = try await WebhookReceiver()
        defer { Task { await receiver.stop() } }
        let path = try config(folder, receiver: receiver, secret: "very-secret-hook-key")
        try (try String(contentsOfFile: path, encoding: .utf8) + "\n")
            .replacingOccurrences(of: "notify_retry", with: "  - url: http://127.0.0.1:9/nothing-listens\n    timeout: 2s\nnotify_retry")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let state = ["--config", path, "--state-dir", folder.path + "/state"]
        let sent = try await Processes.command(["notify", "test"] + state)
        #expect(sent.status == 1, "one target cannot take it: \(sent.out) \(sent.err)")
        #expect(sent.out.contains("ok       \(receiver.url.absoluteString)") && sent.out.contains("failed   http://127.0.0.1:9/nothing-listens"), "\(sent.out)")
        let only = try await Processes.command(["notify", "test", "--target", "0"] + state)
        #expect(only.status == 0, "\(only.out) \(only.err)")
        let received = await receiver.received
        #expect(received.count == 2 && received.allSatisfy { $0.type == "notify.test" && $0.signatureVerifies(secret: "very-secret-hook-key") })
        let shown = try await Processes.command(["config"] + state)
        #expect(!shown.out.contains("very-secret-hook-key") && shown.out.contains("secret "), "\(shown.out)")
        let json = try await Processes.command(["config", "--json"] + state)
        #expect(!json.out.contains("very-secret-hook-key"))
    }

    @Test("a command target that never reads its stdin takes the event, and the sender lives on (no SIGPIPE)")
    func commandIgnoringStdin() async throws {
        let folder = try TemporaryDirectory("notify-command")
        defer { folder.remove() }
        let path = folder.path + "/config.yaml"
        // `true` exits before the event is written to it: the write fails with EPIPE, which must not kill the sender.
        try "notify:\n  - command: [\"/bin/true\"]\n".write(toFile: path, atomically: true, encoding: .utf8)
        for _ in 0..<3 {
            let sent = try await Processes.command(["notify", "test", "--config", path, "--state-dir", folder.path + "/state"])
            #expect(sent.status == 0, "\(sent.status): \(sent.out) \(sent.err)")
            #expect(sent.out.contains("ok"), "\(sent.out)")
        }
    }

    @Test("a job held at fal longer than stall_after is told once as stalled, with its state and request")
    func stalled() async throws {
        let folder = try TemporaryDirectory("notify-stalled")
        defer { folder.remove() }
        let receiver = try await WebhookReceiver()
        defer { Task { await receiver.stop() } }
        let emulator = try await EmulatorProcess(["--hold"])
        let daemon = try Processes.daemon(emulator, folder: folder, extra: ["--config", try config(folder, receiver: receiver, extra: "stall_after: 1s")])
        await daemon.waitForStderr("watching ")
        _ = try batch(folder, name: "stuck", count: 1)
        await receiver.wait(for: 1)
        let first = await receiver.received
        #expect(first.map(\.type) == ["stalled"])
        let data = first.first?.json["data"]
        #expect(data?["job"] == "shot-1" && data?["state"] == "in_queue" && data?["request_id"]?.stringValue?.isEmpty == false, "\(data ?? .null)")
        _ = try await emulator.releaseRequests()
        await daemon.waitForStderr("completed:")
        await receiver.wait(for: 2)
        #expect(await receiver.received.filter { $0.type == "stalled" }.count == 1, "told once, not at every look")
        daemon.signal(SIGTERM)
        _ = await daemon.waitForExit()
    }
}
