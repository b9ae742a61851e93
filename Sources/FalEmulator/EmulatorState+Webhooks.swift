import AsyncHTTPClient
import Crypto
import Foundation
import KlingCore
import NIOCore

/// One webhook to send: the request's outcome as fal POSTs it, and the fault drawn for it.
struct WebhookDelivery: Sendable {
    let requestID: String
    let url: String
    let body: Data
    let fault: FaultKind?
}

extension EmulatorState {
    /// The published key set: the one key webhooks are signed with.
    public nonisolated var webhookKeySet: JSONValue {
        ["keys": [["kty": "OKP", "crv": "Ed25519", "use": "sig", "x": .string(webhookKey.publicKey.rawRepresentation.base64URLEncoded)]]]
    }

    /// The signing key, from its bytes (the key type itself is not `Sendable`).
    nonisolated var webhookKey: Curve25519.Signing.PrivateKey {
        // The bytes came from a key made at init, so they always make one again.
        try! Curve25519.Signing.PrivateKey(rawRepresentation: webhookKeyBytes)
    }

    /// The four headers fal sends with a delivery of `body` for `requestID`, signed at `timestamp` by the emulator's
    /// key (or by a key nobody published, for `webhook-forged`). Public so tests can replay or age a delivery.
    public nonisolated func webhookHeaders(requestID: String, body: Data, timestamp: Date = Date(), forged: Bool = false) -> [String: String] {
        let stamp = String(Int64(timestamp.timeIntervalSince1970))
        let message = Data("\(requestID)\n\(webhookUserID)\n\(stamp)\n\(SHA256.hash(data: body).hexString)".utf8)
        let key = forged ? Curve25519.Signing.PrivateKey() : webhookKey
        let signature = (try? key.signature(for: message)).map { Data($0).hexString } ?? ""
        return [
            "X-Fal-Webhook-Request-Id": requestID, "X-Fal-Webhook-User-Id": webhookUserID,
            "X-Fal-Webhook-Timestamp": stamp, "X-Fal-Webhook-Signature": signature,
        ]
    }

    /// A submit asked for a webhook: the courier watches the request until it ends.
    func awaitWebhook(_ id: String) {
        guard !shutDown else { return }
        pendingWebhooks.insert(id)
        if courierRunning {
            webhookBell.ring()
        } else {
            courierRunning = true
            Task { await self.runCourier() }
        }
    }

    /// Sends the webhooks of requests that ended, then sleeps until the next request could end. Time is simulated
    /// lazily, so this is the one loop that looks at the queue unasked; it runs only while a webhook is pending.
    private nonisolated func runCourier() async {
        while true {
            let (due, next) = await takeDueWebhooks(now: Date())
            for delivery in due { Task { await self.deliver(delivery) } }
            guard let next else { if await courierMayStop() { return } else { continue } }
            await webhookBell.wait(until: .now + .seconds(max(0, next.timeIntervalSinceNow)))
        }
    }

    private func courierMayStop() -> Bool {
        guard pendingWebhooks.isEmpty || shutDown else { return false }
        courierRunning = false
        return true
    }

    /// Stops sending webhooks: the emulator is shutting down (pending ones are dropped, as a dying host would).
    public func shutDownWebhooks() {
        shutDown = true
        pendingWebhooks = []
        webhookBell.ring()
    }

    /// The pending webhooks whose request ended, and when the next pending one could end (nil when none is pending;
    /// a minute on when every pending request is held).
    func takeDueWebhooks(now: Date) -> (due: [WebhookDelivery], next: Date?) {
        advance(to: now)
        var due: [WebhookDelivery] = []
        for id in pendingWebhooks {
            guard let request = requests[id], request.isFinished else { continue }
            pendingWebhooks.remove(id)
            guard let url = request.webhookURL else { continue }
            due.append(WebhookDelivery(requestID: id, url: url, body: webhookBody(request), fault: drawFault(for: .webhook)))
        }
        guard !pendingWebhooks.isEmpty else { return (due, nil) }
        return (due, max(nextQueueEvent(after: now), now.addingTimeInterval(0.001)))
    }

    /// The body fal POSTs: `{request_id, gateway_request_id, status, payload, error}`.
    private func webhookBody(_ request: EmulatedRequest) -> Data {
        var body: [String: JSONValue] = ["request_id": .string(request.id), "gateway_request_id": .string(request.id)]
        if request.outcome == .success {
            body["status"] = "OK"
            body["payload"] = resultBody(for: request)
            body["error"] = .null
        } else {
            let (message, type) = request.completionError ?? ("Request failed", nil)
            body["status"] = "ERROR"
            body["payload"] = ["detail": .string(message), "error_type": type.map(JSONValue.string) ?? .null]
            body["error"] = .string(message)
        }
        return JSONValue.object(body).canonicalData()
    }

    /// Sends one webhook as fal does: retried with backoff until a 2xx, sent twice for `webhook-duplicate`, not at
    /// all for `webhook-lost`, and signed by an unpublished key (once, never retried) for `webhook-forged`.
    private nonisolated func deliver(_ delivery: WebhookDelivery) async {
        if delivery.fault == .webhookLost { return }
        let copies = delivery.fault == .webhookDuplicate ? 2 : 1
        let forged = delivery.fault == .webhookForged
        let (attempts, firstWait) = await (configuration.webhookAttempts, configuration.webhookRetrySeconds)
        for _ in 0..<copies {
            var wait = firstWait
            for attempt in 1...max(1, attempts) {
                guard await !shutDown else { return }
                let answer = await post(delivery, forged: forged)
                await noteWebhookAnswer(answer)
                if forged || (answer.map { (200..<300).contains($0) } ?? false) || attempt == attempts { break }
                try? await Task.sleep(for: .milliseconds(Int64(wait * 1000)))
                wait = min(wait * 2, 60)
            }
        }
    }

    /// One POST; the status code, or nil when no answer came.
    private nonisolated func post(_ delivery: WebhookDelivery, forged: Bool) async -> Int? {
        var request = HTTPClientRequest(url: delivery.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        for (name, value) in webhookHeaders(requestID: delivery.requestID, body: delivery.body, forged: forged) {
            request.headers.add(name: name, value: value)
        }
        request.body = .bytes(ByteBuffer(bytes: delivery.body))
        do {
            let response = try await Self.webhookClient.execute(request, timeout: .seconds(15))
            _ = try? await response.body.collect(upTo: 1 << 16)
            return Int(response.status.code)
        } catch {
            return nil
        }
    }

    /// The client webhooks go out on, for the life of the process: fal sends many at once from many hosts, and the
    /// shared client's 8 connections per host would queue a batch's webhooks behind each other.
    private static let webhookClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 128
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    private func noteWebhookAnswer(_ status: Int?) {
        tallies.webhookAttempts += 1
        tallies.webhookAnswers[status.map(String.init) ?? "error", default: 0] += 1
        if let status, (200..<300).contains(status) { tallies.webhooksDelivered += 1 }
    }
}
