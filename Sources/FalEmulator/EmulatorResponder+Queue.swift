import Foundation
import HTTPTypes
import Hummingbird
import KlingCore
import NIOCore

extension EmulatorResponder {
    func submit(endpoint: String, key: String, request: Request, fault: FaultKind?) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: 32 << 20)
        let data = Data(body.readableBytesView)
        guard let input = try? JSONValue.parse(data) else {
            return Self.json(.unprocessableContent, ["detail": [["loc": ["body"], "msg": "Input should be a valid JSON object", "type": "json_invalid", "url": "https://docs.fal.ai/errors#json_invalid"]]])
        }
        let app = endpoint.split(separator: "/").prefix(2).joined(separator: "/")
        await state.noteSubmitOptions(Self.submitOptions(of: request))
        let now = Date()
        let webhook: String? = request.uri.queryParameters.get("fal_webhook")
        switch await state.submit(endpoint: endpoint, app: app, key: key, body: data, input: input, fault: fault, webhook: webhook, now: now) {
        case .overConcurrencyLimit(let limit):
            let seconds = await state.configuration.retryAfterSeconds
            return Self.rateLimited(retryAfter: seconds, detail: "Concurrency limit of \(limit) requests reached for this key")
        case .invalid(let issues):
            return Self.json(.unprocessableContent, ["detail": .array(issues)], headers: [Self.retryable: "false"])
        case .created(let id, let position):
            switch fault {
            case .dropSubmitAnswer?: return Self.reset()
            case .nonJSON?: return Self.htmlOK()
            case .gatewayError?: return Self.gatewayPage()
            default: break
            }
            await state.holdSubmitAnswerIfAsked()
            let base = await state.answerBase.appendingPathComponent("\(app)/requests/\(id)")
            return Self.json(.ok, [
                "request_id": .string(id),
                "response_url": .string(base.absoluteString),
                "status_url": .string(base.appendingPathComponent("status").absoluteString),
                "cancel_url": .string(base.appendingPathComponent("cancel").absoluteString),
                "queue_position": .int(Int64(position)),
            ], headers: [Self.falRequestID: id])
        }
    }

    /// The optional settings fal reads from a submit: the webhook in the query, the rest in headers.
    static func submitOptions(of request: Request) -> [String: String] {
        var options: [String: String] = [:]
        if let webhook = request.uri.queryParameters.get("fal_webhook") { options["fal_webhook"] = webhook }
        for name in ["X-Fal-Request-Timeout", "X-Fal-Queue-Priority", "X-Fal-Object-Lifecycle-Preference"] {
            if let value = request.headers[values: HTTPField.Name(name)!].first { options[name] = value }
        }
        return options
    }

    func status(app: String, id: String, request: Request) async -> Response {
        let withLogs = ["1", "true"].contains(request.uri.queryParameters.get("logs") ?? "")
        guard let body = await statusBody(app: app, id: id, logs: withLogs, poll: true) else {
            return Self.json(.notFound, ["detail": "Request not found"])
        }
        return Self.json(.ok, body, headers: [Self.falRequestID: id])
    }

    /// The status object fal sends for a request, or nil when it does not exist.
    func statusBody(app: String, id: String, logs: Bool, poll: Bool) async -> JSONValue? {
        let now = Date()
        guard let emulated = await state.lookUp(app: app, id: id, now: now, poll: poll) else { return nil }
        let base = await state.answerBase.appendingPathComponent("\(app)/requests/\(id)")
        var body: [String: JSONValue] = [
            "status": .string(emulated.phase.rawValue),
            "request_id": .string(id),
            "response_url": .string(base.absoluteString),
            "status_url": .string(base.appendingPathComponent("status").absoluteString),
            "cancel_url": .string(base.appendingPathComponent("cancel").absoluteString),
        ]
        switch emulated.phase {
        case .queued:
            body["queue_position"] = .int(Int64(await state.queuePosition(of: id)))
        case .running:
            body["logs"] = logs ? .array(emulated.logs(at: now)) : .null
        case .completed:
            body["logs"] = logs ? .array(emulated.logs(at: now)) : .null
            let inference = emulated.endedAt.flatMap { end in emulated.startedAt.map { end.timeIntervalSince($0) } } ?? 0
            body["metrics"] = ["inference_time": .double(inference)]
            if let (message, type) = emulated.completionError {
                body["error"] = .string(message)
                body["error_type"] = type.map(JSONValue.string) ?? .null
            }
        }
        return .object(body)
    }

    /// Server-sent events of the status object, one per change (as the protocol page says), until the request
    /// completes; the request is looked at when it can change (`nextChange`), at most `streamIntervalSeconds` apart. `stream-cut` closes the stream after its
    /// first event; `stream-silent` sends nothing at all; `stream-linger` keeps it open after COMPLETED, a comment
    /// every `streamIntervalSeconds`, until the client closes it.
    func statusStream(app: String, id: String, fault: FaultKind? = nil) async -> Response {
        guard await statusBody(app: app, id: id, logs: true, poll: false) != nil else {
            return Self.json(.notFound, ["detail": "Request not found"])
        }
        await state.countStatusStream()
        let interval = await state.configuration.streamIntervalSeconds
        let responder = self
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponseBody { writer in
                await responder.state.noteStreamOpen(true)
                do {
                    try await responder.streamEvents(app: app, id: id, fault: fault, interval: interval, to: &writer)
                } catch {
                    await responder.state.noteStreamOpen(false)
                    throw error
                }
                await responder.state.noteStreamOpen(false)
                try await writer.finish(nil)
            })
    }

    /// Writes the stream's events, then returns (or, with `stream-linger`, keeps writing comments).
    private func streamEvents(app: String, id: String, fault: FaultKind?, interval: Double, to writer: inout any ResponseBodyWriter) async throws {
        let responder = self
        // A comment line every second keeps the connection honest: once the client is gone the write fails
        // and the loop ends, so a stream never outlives its reader (nor holds up the emulator's shutdown).
        var last: String?
        var sentRunning = false
        var quietSince = ContinuousClock.now
        var lingering = false
        while !Task.isCancelled {
            if fault != .streamSilent {
                guard let body = await responder.statusBody(app: app, id: id, logs: true, poll: false) else { break }
                let text = body.canonicalString()
                if text != last, body["status"]?.stringValue == "COMPLETED", sentRunning == false, case .object(var running) = body {
                    // A request that ran between two looks still went through IN_PROGRESS: say so, as fal would.
                    running["status"] = "IN_PROGRESS"
                    running["metrics"] = nil
                    running["error"] = nil
                    running["error_type"] = nil
                    var event = ByteBuffer(string: "data: ")
                    event.writeString(JSONValue.object(running).canonicalString())
                    event.writeString("\n\n")
                    try await writer.write(event)
                }
                if body["status"]?.stringValue == "IN_PROGRESS" { sentRunning = true }
                if text != last {
                    var event = ByteBuffer(string: "data: ")
                    event.writeString(text)
                    event.writeString("\n\n")
                    try await writer.write(event)
                    last = text
                    quietSince = .now
                    if body["status"]?.stringValue == "COMPLETED" {
                        guard fault == .streamLinger else { break }
                        lingering = true
                    }
                    if fault == .streamCut { break }
                }
            }
            if lingering {
                // A comment every look: each one that goes out is a client still reading after COMPLETED.
                try await writer.write(ByteBuffer(string: ":\n"))
                await responder.state.countLingerComment()
            } else if ContinuousClock.now - quietSince >= .seconds(1) {
                try await writer.write(ByteBuffer(string: ":\n"))
                quietSince = .now
            }
            // Nothing changes after COMPLETED: a lingering stream only keeps its comments going.
            let change = lingering ? .distantFuture : await responder.state.nextChange(of: id, after: Date())
            try await Task.sleep(for: .milliseconds(Int64(max(0.001, min(interval, change.timeIntervalSinceNow)) * 1000)))
        }
    }

    func result(app: String, id: String) async -> Response {
        await state.countResultFetch()
        guard let emulated = await state.lookUp(app: app, id: id, now: Date()) else {
            return Self.json(.notFound, ["detail": "Request not found"])
        }
        guard emulated.isFinished else {
            return Self.json(.badRequest, ["detail": "Request is still in progress"], headers: [Self.falRequestID: id])
        }
        switch emulated.outcome {
        case .success:
            return Self.json(.ok, await state.resultBody(for: emulated), headers: [Self.falRequestID: id])
        case .invalid(let issues):
            return Self.json(.unprocessableContent, ["detail": .array(issues)], headers: [Self.falRequestID: id, Self.retryable: "false"])
        case .rejected:
            let issue: JSONValue = [
                "loc": ["body", "prompt"], "msg": "The content was flagged by a content checker.",
                "type": "content_policy_violation", "url": "https://docs.fal.ai/errors#content_policy_violation",
            ]
            return Self.json(.unprocessableContent, ["detail": [issue]], headers: [Self.falRequestID: id, Self.retryable: "false"])
        case .runnerFailure(let status, let type, let detail):
            return Self.falError(status, detail, type: type, requestID: id)
        case .cancelled:
            return Self.falError(499, "Request was cancelled", type: "client_cancelled", requestID: id)
        }
    }

    func cancel(app: String, id: String) async -> Response {
        switch await state.cancel(app: app, id: id, now: Date()) {
        case nil: return Self.json(.notFound, ["detail": "Request not found"])
        case false?: return Self.json(.badRequest, ["status": "ALREADY_COMPLETED"])
        case true?: return Self.json(.accepted, ["status": "CANCELLATION_REQUESTED"])
        }
    }
}
