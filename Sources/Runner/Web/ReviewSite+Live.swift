import Foundation
import Hummingbird
import JobStore
import KlingCore
import ServiceLifecycle

extension ReviewSite {
    /// `/live?after=ID`: server-sent events, one per state change in the store's event table after `after`
    /// (`event: job`, `id:` the event's id, `data: {"job":…,"state":…}`), so a page changes a card as its
    /// job moves, without reloading. The store is looked at every 250 ms while jobs move, backing off to every 2 s
    /// while nothing does; in a daemon a quiet page then sleeps until the store moves (`changes`). A comment every
    /// 15 s keeps proxies from closing a quiet stream, and a write to a closed connection ends the loop.
    func live(_ request: Request) async throws -> Response {
        let start: Int64
        if let resumed = request.headers[.init("Last-Event-ID")!].flatMap({ Int64($0) }) {
            start = resumed
        } else if let given = request.uri.queryParameters.get("after").flatMap({ Int64($0) }) {
            start = given
        } else {
            start = try await store.lastEventID()
        }
        let store = self.store
        var headers = Self.securityHeaders
        headers[.contentType] = "text/event-stream"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            var quiet = ContinuousClock.now
            var after = start
            var pause: Duration = .milliseconds(250)
            // A stopping server ends the stream at once (the browser reconnects, with Last-Event-ID, to whoever serves next).
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let generation = changes?.generation
                let events = try await store.stateEvents(after: after, limit: 500)
                for event in events {
                    after = event.id
                    let data = JSONValue.object(["job": .int(event.jobId), "state": .string(event.toState?.rawValue ?? "")])
                    try await writer.write(ByteBuffer(string: "event: job\nid: \(event.id)\ndata: \(data.canonicalString())\n\n"))
                }
                if !events.isEmpty { quiet = .now }
                if ContinuousClock.now - quiet >= .seconds(15) {
                    try await writer.write(ByteBuffer(string: ":\n\n"))
                    quiet = .now
                }
                // Quick while jobs move, slower (up to 2 s) while nothing does, so an open page costs an idle daemon little.
                pause = events.isEmpty ? min(pause * 3 / 2, .seconds(2)) : .milliseconds(250)
                guard events.count < 500 else { continue }
                if let changes, let generation, pause == .seconds(2) {
                    // Quiet in a daemon: sleep until its status reporter sees the store move (or the keep-alive is due).
                    await cancelWhenGracefulShutdown { await changes.wait(after: generation, atMost: .seconds(15)) }
                    try Task.checkCancellation()
                    if changes.generation != generation { pause = .milliseconds(250) }
                } else {
                    try? await cancelWhenGracefulShutdown { [pause] in try await Task.sleep(for: pause) }
                    try Task.checkCancellation()
                }
            }
            try await writer.finish(nil)
        })
    }

    /// `/login?token=…`: the URL `kling-batch serve` prints. A right token is kept in an HttpOnly, SameSite=Strict
    /// cookie (so another site's page cannot act with it) and the browser is sent on without it in the address bar.
    func login(_ request: Request) -> Response {
        guard actions != nil, token.matches(request.uri.queryParameters.get("token").map { String($0) }) else {
            return plain(.forbidden, "that is not this install's token; the page stays read-only")
        }
        var headers = Self.securityHeaders
        headers[.location] = "/"
        headers[.setCookie] = "\(Self.cookie)=\(token.value); Path=/; HttpOnly; SameSite=Strict"
        return Response(status: .seeOther, headers: headers)
    }

    /// `POST /jobs/ID/{cancel,retry}` and `POST /batches/ID/rerun`: with the token only (403 without, and nothing
    /// changes), then back to the page it came from with what happened.
    func act(_ request: Request, id: Int64, action: String, batch: Bool) async throws -> Response {
        guard let actions, mayAct(request) else { return plain(.forbidden, "actions need this install's token: open the URL `kling-batch serve` prints") }
        let result: ReviewActions.Result
        let back: String
        switch (batch, action) {
        case (false, "cancel"), (false, "retry"):
            guard let job = try await store.job(id) else { throw HTTPError(.notFound) }
            result = action == "cancel" ? try await actions.cancel(job) : try await actions.retry(job)
            back = "/jobs/\(id)"
        case (true, "rerun"):
            guard let record = try await store.batch(id) else { throw HTTPError(.notFound) }
            result = try await actions.rerun(record)
            back = "/batches/\(id)"
        default:
            throw HTTPError(.notFound)
        }
        logger.notice("review page: \(action) \(batch ? "batch" : "job") \(id): \(result.message)")
        if request.headers[.accept]?.contains("application/json") == true {
            return Response(status: result.changed ? .ok : .conflict, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: JSONValue.object(["changed": .bool(result.changed), "message": .string(result.message)]).canonicalString())))
        }
        var headers = Self.securityHeaders
        headers[.location] = back
        return Response(status: .seeOther, headers: headers)
    }
}
