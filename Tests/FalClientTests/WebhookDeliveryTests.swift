import FalClient
import FalEmulator
import Foundation
import KlingCore
import Testing
import TestSupport

/// The emulator's webhooks, checked the way a receiver checks fal's: signed with the key it publishes, retried
/// until answered 2xx, and duplicated, forged or lost when a fault knob says so.
@Suite("Emulator webhook deliveries", .timeLimit(.minutes(5)))
struct WebhookDeliveryTests {
    /// Submits `count` requests asking for webhooks to `receiver`, with `configure` applied to the emulator.
    func deliver(
        _ count: Int, statuses: [Int] = [], expecting received: Int,
        configure: @escaping @Sendable (inout EmulatorConfiguration) -> Void = { _ in }
    ) async throws -> (received: [WebhookReceiver.Received], ids: [String], counters: EmulatorCounters, verdicts: [Result<FalWebhook.Delivery, FalWebhook.Rejection>]) {
        let receiver = try await WebhookReceiver(statuses: statuses)
        defer { Task { await receiver.stop() } }
        return try await EmulatorHarness.run(configure: { configuration in
            configuration.webhookRetrySeconds = 0.01
            configure(&configuration)
        }) { harness in
            var ids: [String] = []
            for index in 0..<count {
                let receipt = try await harness.client.submit(
                    endpoint: .klingO1ReferenceToVideo, input: input("webhook \(index)"), options: SubmitOptions(webhookURL: receiver.url))
                ids.append(receipt.handle.requestID)
            }
            await receiver.wait(for: received)
            // The emulator counts an attempt once the receiver's answer is back: wait for that too.
            while await harness.emulator.state.counters().webhookAttempts < received { try await Task.sleep(for: .milliseconds(5)) }
            let keys = try await harness.client.webhookKeys(from: harness.client.endpoints.webhookKeys)
            let all = await receiver.received
            let verdicts = all.map { FalWebhook.verify(headers: $0.headers, body: Data($0.body), now: Date(), keys: keys) }
            return (all, ids, await harness.emulator.state.counters(), verdicts)
        }
    }

    @Test("each request's end is POSTed once, signed with the published key, with fal's body fields")
    func signed() async throws {
        let (received, ids, counters, verdicts) = try await deliver(3, expecting: 3)
        #expect(Set(received.compactMap { $0.json["request_id"]?.stringValue }) == Set(ids))
        for (delivery, verdict) in zip(received, verdicts) {
            guard case .success(let accepted) = verdict else { Issue.record("refused: \(verdict)"); continue }
            #expect(accepted.status == "OK")
            #expect(delivery.json["gateway_request_id"] == delivery.json["request_id"])
            #expect(delivery.json["payload"]?["video"]?["url"]?.stringValue?.hasSuffix("/output.mp4") == true)
            #expect(delivery.json["error"] == .null)
        }
        #expect(counters.webhookAttempts == 3 && counters.webhooksDelivered == 3 && counters.webhookAnswers == ["200": 3])
    }

    @Test("a receiver that answers 500, then 503, gets the webhook again until it answers 200")
    func retried() async throws {
        let (received, _, counters, verdicts) = try await deliver(1, statuses: [500, 503], expecting: 3)
        #expect(received.count == 3)
        #expect(verdicts.allSatisfy { if case .success = $0 { true } else { false } })
        #expect(counters.webhookAnswers == ["500": 1, "503": 1, "200": 1] && counters.webhooksDelivered == 1)
    }

    @Test("a failed request's webhook says ERROR with fal's error")
    func failed() async throws {
        let (received, _, _, verdicts) = try await deliver(1, expecting: 1) { $0.faults = [FaultRule(kind: .jobFailure, probability: 1)] }
        guard case .success(let delivery)? = verdicts.first else { Issue.record("refused: \(verdicts)"); return }
        #expect(delivery.status == "ERROR")
        #expect(received.first?.json["error"]?.stringValue == "The runner encountered an internal server error")
    }

    @Test("webhook-duplicate sends two signed deliveries; webhook-forged one that fails verification, never retried")
    func duplicateAndForged() async throws {
        let (twice, ids, counters, verdicts) = try await deliver(1, expecting: 2) { $0.faults = [FaultRule(kind: .webhookDuplicate, probability: 1)] }
        #expect(twice.map { $0.json["request_id"]?.stringValue } == [ids[0], ids[0]])
        #expect(verdicts.allSatisfy { if case .success = $0 { true } else { false } } && counters.faults(.webhookDuplicate) == 1)

        let (forged, _, forgedCounters, forgedVerdicts) = try await deliver(1, statuses: [401], expecting: 1) {
            $0.faults = [FaultRule(kind: .webhookForged, probability: 1)]
        }
        #expect(forged.count == 1 && forgedVerdicts.first.map { if case .failure(.badSignature) = $0 { true } else { false } } == true)
        #expect(forgedCounters.webhookAttempts == 1 && forgedCounters.webhookAnswers == ["401": 1])
    }

    @Test("webhook-lost: that request's webhook never comes, the other's does")
    func lost() async throws {
        let (received, ids, counters, _) = try await deliver(2, expecting: 1) { $0.faults = [FaultRule(kind: .webhookLost, probability: 1, limit: 1)] }
        #expect(received.count == 1 && ids.contains(received[0].json["request_id"]?.stringValue ?? ""))
        #expect(counters.faults(.webhookLost) == 1 && counters.webhookAttempts == 1)
    }

    @Test("the key set is served at /.well-known/jwks.json and at the admin URL, never needing the key")
    func keySet() async throws {
        try await EmulatorHarness.run { harness in
            let published = try await harness.client.webhookKeys(from: harness.baseURL.appendingPathComponent(".well-known/jwks.json"))
            let admin = try await harness.client.webhookKeys(from: harness.baseURL.appendingPathComponent("_emulator/jwks.json"))
            #expect(published.map(\.rawRepresentation) == admin.map(\.rawRepresentation) && published.count == 1)
            #expect(await harness.emulator.state.counters().unauthorizedCalls == 0)
        }
    }
}
