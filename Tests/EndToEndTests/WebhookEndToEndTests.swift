import AsyncHTTPClient
import FalEmulator
import Foundation
import KlingCore
import Logging
import NIOCore
import Testing
import TestSupport

/// The daemon takes fal's signed webhooks on its `--http` listener: a valid one makes the job look at once; a
/// forged, stale, replayed, repeated or unknown one changes nothing; a lost one costs only the polling delay. The
/// emulator runs in this process, so a test can sign (and age, and forge) deliveries with its key.
@Suite("Webhooks end to end", .serialized, .timeLimit(.minutes(5)))
struct WebhookEndToEndTests {
    /// What a test sees: the daemon, the emulator, the webhook URL and the job folder.
    struct Setup: Sendable {
        let daemon: ChildProcess
        let emulator: FalEmulator
        let webhook: String
        let folder: TemporaryDirectory
    }

    /// A daemon taking webhooks on a free port, against an in-process emulator with `faults`, running `jobs` takes;
    /// `polling` is the poll schedule (long by default, so only a webhook can finish a job quickly).
    func withDaemon(
        jobs: Int, faults: [FaultRule] = [], polling: String = "20s", hold: Bool = false, _ body: @Sendable (Setup) async throws -> Void
    ) async throws {
        let folder = try TemporaryDirectory("webhook-e2e")
        defer { folder.remove() }
        let trap = try ListenerTrap()
        let port = trap.port
        trap.close()
        let webhook = "http://127.0.0.1:\(port)/fal/webhook"
        try "webhook_url: \(webhook)\nstatus_stream: false\npoll_first: \(polling)\npoll_max_in_queue: \(polling)\npoll_max_in_progress: \(polling)\n"
            .write(toFile: folder.path + "/config.yaml", atomically: true, encoding: .utf8)
        var configuration = EmulatorConfiguration()
        configuration.runSeconds = 0.3
        configuration.queueSeconds = 0.1
        configuration.webhookRetrySeconds = 0.05
        configuration.faults = faults
        configuration.holdRequests = hold
        var logger = Logger(label: "webhook-e2e-emulator")
        logger.logLevel = .warning
        let emulator = FalEmulator(configuration: configuration, logger: logger)
        try await emulator.withRunning { url in
            let daemon = try ChildProcess("kling-batch", [
                "daemon", "--fal-url", url.absoluteString, "--jobs", folder.path + "/jobs", "--state-dir", folder.path + "/state",
                "--out", folder.path + "/out", "--settle", "100ms", "--log-level", "debug", "--config", folder.path + "/config.yaml",
                "--http", "127.0.0.1:\(port)",
            ], environment: Processes.environment())
            await daemon.waitForStderr("webhooks: fal is asked to POST to \(webhook)")
            await daemon.waitForStderr("watching ")
            try Processes.drop(jobs, into: folder)
            try await body(Setup(daemon: daemon, emulator: emulator, webhook: webhook, folder: folder))
            daemon.signal(SIGTERM)
            #expect(await daemon.waitForExit() == 0, "\(daemon.stderr.suffix(2000))")
        }
    }

    /// The emulator's counters once `condition` holds: its webhook sender shares the test's few threads, so it may
    /// count a delivery well after the daemon has logged the job's end. No deadline: the time limit catches a hang.
    static func counters(of emulator: FalEmulator, when condition: (EmulatorCounters) -> Bool) async throws -> EmulatorCounters {
        while true {
            let counters = await emulator.state.counters()
            if condition(counters) || Task.isCancelled { return counters }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    @Test("each job is woken by its webhook instead of waiting out a 20 s poll schedule, and nothing is paid twice")
    func woken() async throws {
        try await withDaemon(jobs: 6) { setup in
            await setup.daemon.waitForStderr("completed:", count: 6)
            await setup.daemon.waitForStderr("looking now", count: 6)
            let counters = try await Self.counters(of: setup.emulator) { $0.webhooksDelivered >= 6 }
            // A webhook that beats the commit of its request id gets 404 and comes again; each is delivered once.
            #expect(counters.webhooksDelivered == 6 && counters.webhookAnswers.keys.allSatisfy { ["200", "404"].contains($0) }, "\(counters)")
            #expect(counters.submitHeaders["fal_webhook"] == 6)
            // Each webhook asks for one look; a job submitted once run times are known may also poll once near its expected
            // end (the schedule is 20 s otherwise, far longer than this test runs).
            #expect((6...12).contains(counters.statusPolls), "\(counters.statusPolls) status calls")
            #expect(counters.requestsCreated == 6 && counters.duplicateSubmissions == 0)
            #expect(setup.daemon.stderrCount("looking now") == 6)
        }
    }

    @Test("webhook-duplicate: every webhook comes twice; the second is ignored and nothing is done twice")
    func duplicates() async throws {
        try await withDaemon(jobs: 4, faults: [FaultRule(kind: .webhookDuplicate, probability: 1)]) { setup in
            await setup.daemon.waitForStderr("completed:", count: 4)
            await setup.daemon.waitForStderr("again; ignored", count: 4)
            let counters = try await Self.counters(of: setup.emulator) { $0.webhooksDelivered >= 8 }
            #expect(counters.webhooksDelivered == 8, "\(counters)")
            #expect((4...8).contains(counters.statusPolls) && counters.resultFetches == 4 && counters.videoDownloads == 4, "\(counters)")
            #expect(counters.requestsCreated == 4 && counters.duplicateSubmissions == 0)
        }
    }

    @Test("webhook-forged and webhook-lost: forgeries get 401, and every job still finishes by polling, paid once")
    func forgedAndLost() async throws {
        let faults = [FaultRule(kind: .webhookForged, probability: 1, limit: 2), FaultRule(kind: .webhookLost, probability: 1, limit: 2)]
        try await withDaemon(jobs: 4, faults: faults, polling: "500ms") { setup in
            await setup.daemon.waitForStderr("completed:", count: 4)
            await setup.daemon.waitForStderr("webhook refused", count: 2)
            let counters = try await Self.counters(of: setup.emulator) {
                $0.faults(.webhookForged) >= 2 && $0.faults(.webhookLost) >= 2 && $0.webhookAnswers["401"] ?? 0 >= 2
            }
            #expect(counters.faults(.webhookForged) == 2 && counters.faults(.webhookLost) == 2, "\(counters)")
            #expect(counters.webhookAnswers == ["401": 2], "\(counters)")
            #expect(setup.daemon.stderrCount("webhook refused: the signature does not verify with any of fal's published keys") == 2)
            #expect(counters.requestsCreated == 4 && counters.duplicateSubmissions == 0)
        }
    }

    @Test("stale, forged, tampered, unsigned, mismatched and unknown deliveries while jobs wait at fal: 401/404, no look; then repeats are ignored")
    func attacks() async throws {
        try await withDaemon(jobs: 2, hold: true) { setup in
            await setup.daemon.waitForStderr("submitted (attempt", count: 2)
            let state = setup.emulator.state
            let before = await state.counters()
            let ids = await state.requestSummaries().map(\.requestID)
            let id = try #require(ids.first)
            let body = Self.body(id)
            let stale = try await post(setup, state.webhookHeaders(requestID: id, body: body, timestamp: Date().addingTimeInterval(-400)), body)
            #expect(stale.0 == 401 && stale.1.contains("s away from now"), "\(stale)")
            let overflow = try await post(setup, state.webhookHeaders(requestID: id, body: body).merging(["X-Fal-Webhook-Timestamp": "-9223372036854775808"]) { $1 }, body)
            #expect(overflow.0 == 401 && overflow.1.contains("is not Unix seconds"), "\(overflow)")
            let forged = try await post(setup, state.webhookHeaders(requestID: id, body: body, forged: true), body)
            #expect(forged.0 == 401 && forged.1.contains("does not verify"), "\(forged)")
            let tampered = try await post(setup, state.webhookHeaders(requestID: id, body: body), Self.body(id, status: "ERROR"))
            #expect(tampered.0 == 401 && tampered.1.contains("does not verify"), "\(tampered)")
            let unsigned = try await post(setup, [:], body)
            #expect(unsigned.0 == 401 && unsigned.1.contains("no x-fal-webhook-request-id header"), "\(unsigned)")
            let other = Self.body(ids.last ?? "")
            let mismatched = try await post(setup, state.webhookHeaders(requestID: id, body: other), other)
            #expect(mismatched.0 == 401 && mismatched.1.contains("the body names another request"), "\(mismatched)")
            let unknownBody = Self.body("no-such-request")
            let unknown = try await post(setup, state.webhookHeaders(requestID: "no-such-request", body: unknownBody), unknownBody)
            #expect(unknown.0 == 404, "\(unknown)")
            let during = await state.counters()
            #expect(during.statusPolls == before.statusPolls && setup.daemon.stderrCount("looking now") == 0, "nothing made a job look")

            // Now fal finishes both, and its own webhooks wake them; the same delivery again is ignored.
            await state.releaseHeldRequests()
            await setup.daemon.waitForStderr("completed:", count: 2)
            let done = await state.counters()
            let repeated = try await post(setup, state.webhookHeaders(requestID: id, body: body), body)
            #expect(repeated.0 == 200 && repeated.1.contains("already told; ignored"), "\(repeated)")
            let after = await state.counters()
            #expect(after.statusPolls == done.statusPolls && after.resultFetches == done.resultFetches && after.requestsCreated == 2)
            #expect(after.duplicateSubmissions == 0 && setup.daemon.stderrCount("looking now") == 2)
        }
    }

    /// A webhook body as fal sends it.
    static func body(_ id: String, status: String = "OK") -> Data {
        Data(#"{"request_id":"\#(id)","gateway_request_id":"\#(id)","status":"\#(status)","payload":{},"error":null}"#.utf8)
    }

    /// POSTs a delivery to the daemon's webhook URL; its status and text.
    func post(_ setup: Setup, _ headers: [String: String], _ body: Data) async throws -> (Int, String) {
        var request = HTTPClientRequest(url: setup.webhook)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 16)))
    }
}
