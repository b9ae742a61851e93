import AsyncHTTPClient
import Foundation
import JobStore
import KlingCore
import NIOCore

/// Delivers one event to one target: a POST that must answer 2xx within the target's timeout, or a command that
/// must exit 0. It never throws: every failure is a message for the outbox and the log.
struct NotificationCourier: Sendable {
    let http: HTTPClient
    let commands = CommandRunner()

    /// nil when delivered; otherwise why not.
    func deliver(_ event: OutboxEvent, to target: NotificationTarget) async -> String? {
        let message = NotificationMessage(event: event, format: target.format)
        switch target.endpoint {
        case .url(let url):
            return await post(message, to: url, target: target)
        case .command(let words):
            let outcome = await commands.run(words, stdin: Array(message.document.canonicalString().utf8), environment: environment(event), timeout: target.timeout)
            return outcome.succeeded ? nil : outcome.summary + (outcome.tail.last.map { ": \($0)" } ?? "")
        }
    }

    private func post(_ message: NotificationMessage, to url: String, target: NotificationTarget) async -> String? {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "kling-batch/\(KlingBatchVersion.current)")
        for (name, value) in message.headers(secret: target.secret) { request.headers.add(name: name, value: value) }
        request.body = .bytes(message.body)
        do {
            let response = try await http.execute(request, timeout: .nanoseconds(Int64(target.timeout.seconds * 1e9)))
            _ = try? await response.body.collect(upTo: 64 << 10)
            guard (200..<300).contains(Int(response.status.code)) else { return "HTTP \(response.status.code)" }
            return nil
        } catch {
            // The error names the URL at most; the secret and the key are in neither.
            return "\(type(of: error)): \(error)".prefix(300).description
        }
    }

    /// `KLING_BATCH_EVENT`, `KLING_BATCH_EVENT_ID`, and the event's main fields, for a command.
    func environment(_ event: OutboxEvent) -> [String: String] {
        var environment = ["KLING_BATCH_EVENT": event.kind, "KLING_BATCH_EVENT_ID": event.id, "KLING_BATCH_TEXT": NotificationMessage(event: event, format: .json).text]
        for (field, name) in [("batch", "BATCH"), ("job", "JOB"), ("reason", "REASON"), ("request_id", "REQUEST_ID"), ("output", "OUTPUT"), ("cost_usd", "COST_USD")] {
            if let value = event.payload[field], let text = value.stringValue ?? value.intValue.map(String.init) { environment["KLING_BATCH_" + name] = text }
        }
        return environment
    }
}

/// `kling-batch notify test`: a sample event sent straight to targets (not through the outbox), so a new
/// receiver can be checked before a real batch needs it.
public enum NotificationTest {
    public static let kind = "notify.test"

    /// Each target's label and nil when it took the sample, else why not.
    public static func send(to targets: [NotificationTarget]) async -> [(label: String, failure: String?)] {
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let courier = NotificationCourier(http: http)
        let event = OutboxEvent(kind: kind, payload: [
            "message": "a test from kling-batch notify test; real events are batch.completed, job.failed, budget.held, submission.paused, submission.resumed and stalled",
            "batch": "example", "job": "example-1",
        ], at: Date())
        var results: [(String, String?)] = []
        for target in targets { results.append((target.label, await courier.deliver(event, to: target))) }
        try? await http.shutdown()
        return results
    }
}
