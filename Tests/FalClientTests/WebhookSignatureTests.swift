import Crypto
import FalClient
import FalEmulator
import Foundation
import KlingCore
import Testing
import TestSupport

/// fal's webhook signature as the protocol page defines it, and the emulator's deliveries: signed, retried,
/// duplicated, forged or lost on request.
@Suite("Webhook signatures and deliveries")
struct WebhookSignatureTests {
    let signer = EmulatorState()
    let body = Data(#"{"request_id":"req-1","status":"OK","payload":{}}"#.utf8)

    /// The signer's published keys, read as a client reads them.
    var keys: [FalWebhook.PublicKey] { get throws { try FalWebhook.keys(fromJWKS: signer.webhookKeySet.canonicalData()) } }

    func lowercased(_ headers: [String: String]) -> [String: String] {
        Dictionary(uniqueKeysWithValues: headers.map { ($0.key.lowercased(), $0.value) })
    }

    @Test("the signed text is request id, user id, timestamp and hex SHA-256 of the raw body, joined by newlines")
    func message() throws {
        let headers = lowercased(signer.webhookHeaders(requestID: "req-1", body: body, timestamp: Date(timeIntervalSince1970: 1_700_000_000)))
        let expected = "req-1\nemulator-user\n1700000000\n" + SHA256.hash(data: body).hexString
        #expect(FalWebhook.signedMessage(requestID: "req-1", userID: "emulator-user", timestamp: "1700000000", body: body) == Data(expected.utf8))
        let signature = try #require(Data(hex: headers["x-fal-webhook-signature"] ?? ""))
        #expect(try keys.first?.isValidSignature(signature, for: Data(expected.utf8)) == true)
    }

    @Test("a fresh delivery verifies; 299 s off still does, 301 s off either way is stale")
    func window() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        for (offset, valid) in [(0.0, true), (-299, true), (299, true), (-301, false), (301, false)] {
            let headers = lowercased(signer.webhookHeaders(requestID: "req-1", body: body, timestamp: now.addingTimeInterval(offset)))
            let verdict = FalWebhook.verify(headers: headers, body: body, now: now, keys: try keys)
            switch verdict {
            case .success(let delivery): #expect(valid && delivery == .init(requestID: "req-1", status: "OK"), "offset \(offset)")
            case .failure(let rejection): #expect(!valid && rejection == .stale(secondsOff: Int(abs(offset))), "offset \(offset): \(rejection)")
            }
        }
    }

    @Test("missing headers, a bad timestamp, a changed body, another key, a malformed signature, another request: each refused")
    func refusals() throws {
        let now = Date()
        let good = lowercased(signer.webhookHeaders(requestID: "req-1", body: body, timestamp: now))
        func check(_ headers: [String: String], _ body: Data, _ expected: FalWebhook.Rejection) throws {
            guard case .failure(let rejection) = FalWebhook.verify(headers: headers, body: body, now: now, keys: try keys) else {
                Issue.record("accepted, expected \(expected)")
                return
            }
            #expect(rejection == expected)
        }
        for name in [FalWebhook.requestIDHeader, FalWebhook.userIDHeader, FalWebhook.timestampHeader, FalWebhook.signatureHeader] {
            var missing = good
            missing[name] = nil
            try check(missing, body, .missingHeader(name))
        }
        for stamp in ["yesterday", "-9223372036854775808", "99999999999999999999", "1e10"] {
            var badStamp = good
            badStamp[FalWebhook.timestampHeader] = stamp
            try check(badStamp, body, .badTimestamp(stamp))
        }
        try check(good, Data(#"{"request_id":"req-1","status":"ERROR","payload":{}}"#.utf8), .badSignature)
        try check(lowercased(signer.webhookHeaders(requestID: "req-1", body: body, timestamp: now, forged: true)), body, .badSignature)
        var malformed = good
        malformed[FalWebhook.signatureHeader] = "zz" + (good[FalWebhook.signatureHeader] ?? "").dropFirst(2)
        try check(malformed, body, .badSignature)
        var otherUser = good
        otherUser[FalWebhook.userIDHeader] = "someone-else"
        try check(otherUser, body, .badSignature)
        let otherBody = Data(#"{"request_id":"req-2","status":"OK"}"#.utf8)
        try check(lowercased(signer.webhookHeaders(requestID: "req-1", body: otherBody, timestamp: now)), otherBody, .bodyMismatch("the body names another request"))
    }

    @Test("a key set: Ed25519 keys are read, others skipped; no usable key or no set is an error")
    func keySets() throws {
        let mixed = Data(#"{"keys":[{"kty":"RSA","n":"abc","e":"AQAB"},{"kty":"OKP","crv":"X25519","x":"AAAA"}]}"#.utf8)
        #expect(throws: FalWebhook.KeySetError.self) { try FalWebhook.keys(fromJWKS: mixed) }
        #expect(throws: FalWebhook.KeySetError.self) { try FalWebhook.keys(fromJWKS: Data("<html>".utf8)) }
        guard case .object(var set) = signer.webhookKeySet, case .array(var entries)? = set["keys"] else { Issue.record("no set"); return }
        entries.insert(["kty": "RSA", "n": "abc", "e": "AQAB"], at: 0)
        set["keys"] = .array(entries)
        let read = try FalWebhook.keys(fromJWKS: JSONValue.object(set).canonicalData())
        #expect(read.map(\.rawRepresentation) == [try keys[0].rawRepresentation])
    }
}
