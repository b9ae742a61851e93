import Foundation
import Hummingbird
import JobStore
import KlingCore
import KlingSpec
import Logging

/// The review page: batches, a batch's grid of videos, a job's page, its files, live updates and the actions the
/// CLI has. One value serves both `daemon --http` and `kling-batch serve`; it reads the store, never the runner.
public struct ReviewSite: Sendable {
    let store: any JobQueue
    let layout: OutputLayout
    let token: WebToken
    let actions: ReviewActions?
    let logger: Logger
    /// Fired when the store's newest event moves (the daemon's status reporter); nil: live pages poll the store.
    let changes: Broadcast?

    /// - Parameter actions: what the buttons do; nil makes the site read-only whatever the token.
    public init(store: any JobQueue, layout: OutputLayout, token: WebToken, actions: ReviewActions?, logger: Logger, changes: Broadcast? = nil) {
        self.store = store
        self.layout = layout
        self.token = token
        self.actions = actions
        self.logger = logger
        self.changes = changes
    }

    /// Jobs per page on a batch's grid, batches per page on the front page.
    static let jobsPerPage = 200
    static let batchesPerPage = 50
    static let cookie = "kling_batch_token"

    /// Adds the site's routes to `router` (which may already serve `/metrics` and `/healthz`).
    public func route(on router: Router<BasicRequestContext>) {
        let site = self
        router.get("/") { request, _ in try await site.html(site.batchesPage(request)) }
        router.get("/batches/:id") { request, context in try await site.html(site.batchPage(request, id: try Self.number(context, "id"))) }
        router.get("/jobs/:id") { request, context in try await site.html(site.jobPage(request, id: try Self.number(context, "id"))) }
        router.get("/jobs/:id/card") { request, context in try await site.html(site.cardFragment(request, id: try Self.number(context, "id"))) }
        router.get("/files/:kind/:id") { request, context in
            try await site.file(request, kind: try context.parameters.require("kind"), id: try Self.number(context, "id"), context: context)
        }
        router.get("/files/input/:id/:index") { request, context in
            try await site.input(request, id: try Self.number(context, "id"), index: Int(try Self.number(context, "index")), context: context)
        }
        router.get("/live") { request, _ in try await site.live(request) }
        router.get("/login") { request, _ in site.login(request) }
        router.get("/assets/app.js") { _, _ in site.asset(ReviewAssets.script, type: "text/javascript; charset=utf-8") }
        router.get("/assets/app.css") { _, _ in site.asset(ReviewAssets.style, type: "text/css; charset=utf-8") }
        router.post("/jobs/:id/:action") { request, context in
            try await site.act(request, id: try Self.number(context, "id"), action: try context.parameters.require("action"), batch: false)
        }
        router.post("/batches/:id/:action") { request, context in
            try await site.act(request, id: try Self.number(context, "id"), action: try context.parameters.require("action"), batch: true)
        }
    }

    /// A number from the path; anything else (`..`, a path, text) is a page that does not exist.
    static func number(_ context: BasicRequestContext, _ name: String) throws -> Int64 {
        guard let text = context.parameters.get(name), let value = Int64(text), value >= 0 else { throw HTTPError(.notFound) }
        return value
    }

    /// Whether the request carries the token (in the cookie set by `/login`).
    func mayAct(_ request: Request) -> Bool {
        actions != nil && token.matches(Self.cookieValue(request.headers[.cookie], named: Self.cookie))
    }

    /// Headers every answer gets: no inline script, nothing from elsewhere, no framing, no sniffing.
    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy: "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        .init("X-Content-Type-Options")!: "nosniff",
        .init("Referrer-Policy")!: "no-referrer",
        .cacheControl: "no-store",
    ]

    func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = Self.securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    func asset(_ text: String, type: String) -> Response {
        var headers = Self.securityHeaders
        headers[.contentType] = type
        headers[.cacheControl] = "max-age=300"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    func plain(_ status: HTTPResponse.Status, _ text: String) -> Response {
        var headers = Self.securityHeaders
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text + "\n")))
    }

    /// A cookie's value from a `Cookie` header.
    static func cookieValue(_ header: String?, named name: String) -> String? {
        guard let header else { return nil }
        for part in header.split(separator: ";") {
            let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0] == name { return String(pair[1]) }
        }
        return nil
    }
}
