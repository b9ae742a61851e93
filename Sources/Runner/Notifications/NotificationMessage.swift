import Crypto
import Foundation
import JobStore
import KlingCore

/// What a target receives for an event: the body (our JSON, or Slack's `{"text": …}`), its headers, and one
/// line a person reads. The fal key is never part of an event: payloads are built from the store, which never
/// holds it, and messages from fal are stored with the key redacted.
struct NotificationMessage: Sendable {
    let event: OutboxEvent
    let format: NotificationTarget.Format

    /// The bytes sent (and signed).
    var body: [UInt8] {
        let value: JSONValue = switch format {
        case .slack: ["text": .string(text)]
        case .json: document
        }
        return Array(value.canonicalString().utf8)
    }

    /// Our own format: `{id, type, created_at, host, text, data}`; `data` is the event's own fields.
    var document: JSONValue {
        [
            "id": .string(event.id), "type": .string(event.kind), "created_at": .string(event.createdAt.iso8601),
            "host": .string(ProcessInfo.processInfo.hostName), "text": .string(text), "data": event.payload,
        ]
    }

    /// Headers besides the content type: the event's id and kind, and the body's signature when there is a secret.
    func headers(secret: String?) -> [(String, String)] {
        var headers = [("X-Kling-Batch-Event-Id", event.id), ("X-Kling-Batch-Event", event.kind)]
        if let secret { headers.append(("X-Kling-Batch-Signature", Self.signature(body, secret: secret))) }
        return headers
    }

    /// `sha256=<hex HMAC-SHA256 of the raw body>`, as receivers verify it.
    static func signature(_ body: [UInt8], secret: String) -> String {
        "sha256=" + HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8))).hexString
    }

    /// One line for a person (Slack, a phone).
    var text: String {
        let data = event.payload
        let batch = data["batch"]?.stringValue ?? "?"
        switch event.kind {
        case OutboxEvent.batchCompleted:
            let counts = data["counts"]
            var line = "kling-batch: batch \(batch) finished: \(counts?["completed"]?.intValue ?? 0) completed, \(counts?["failed"]?.intValue ?? 0) failed, "
                + "\(counts?["cancelled"]?.intValue ?? 0) cancelled; \(data["seconds_of_video"]?.intValue ?? 0) s of video, \(data["cost_usd"]?.stringValue ?? "$0")"
            if let failed = data["failed_jobs"]?.arrayValue, !failed.isEmpty {
                line += ". Failed: " + failed.compactMap(\.stringValue).joined(separator: ", ")
            }
            return line + ". Output: \(data["output"]?.stringValue ?? "?")"
        case OutboxEvent.jobFailed:
            return "kling-batch: \(batch)/\(data["job"]?.stringValue ?? "?") failed: \(data["reason"]?.stringValue ?? "?"). \(data["retry_hint"]?.stringValue ?? "")"
        case OutboxEvent.budgetHeld:
            return "kling-batch: batch \(batch) is held by the \(data["budget"]?.stringValue == "day" ? "daily" : "batch") budget: "
                + "\(data["committed_usd"]?.stringValue ?? "?") of \(data["limit_usd"]?.stringValue ?? "?") committed. Raise max_spend_per_\(data["budget"]?.stringValue ?? "day") and reload (SIGHUP) to go on"
        case OutboxEvent.submissionPaused:
            let operatorNeeded = data["needs_operator"]?.boolValue == true
            return "kling-batch: submission paused: \(data["reason"]?.stringValue ?? "?")" + (operatorNeeded ? ". Fix the key and reload (SIGHUP)" : ". It resumes by itself once the cause clears")
        case OutboxEvent.submissionResumed:
            return "kling-batch: submission resumed (\(data["cause"]?.stringValue ?? "?") cleared)"
        case OutboxEvent.stalled:
            return "kling-batch: \(batch)/\(data["job"]?.stringValue ?? "?") has been \(data["state"]?.stringValue ?? "?") at fal since \(data["since"]?.stringValue ?? "?") with no change (request \(data["request_id"]?.stringValue ?? "?"))"
        default:
            return "kling-batch: \(event.kind)"
        }
    }
}
