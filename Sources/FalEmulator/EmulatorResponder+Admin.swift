import Foundation
import HTTPTypes
import Hummingbird
import KlingCore
import NIOCore

extension EmulatorResponder {
    /// The platform API's request listing (`GET /v1/models/requests/by-endpoint`).
    func listRequests(request: Request, key: String) async -> Response {
        let parameters = request.uri.queryParameters
        guard let endpoint = parameters.get("endpoint_id"), !endpoint.isEmpty else {
            return Self.json(.unprocessableContent, ["detail": [["loc": ["query", "endpoint_id"], "msg": "Field required", "type": "missing", "url": "https://docs.fal.ai/errors#missing"]]])
        }
        var query = ListingQuery(endpointID: endpoint, limit: 50, expandPayloads: false)
        for (name, target) in [("start", \ListingQuery.start), ("end", \ListingQuery.end)] {
            guard let text = parameters.get(name) else { continue }
            guard let date = FalTime.parse(text) else {
                return Self.json(.unprocessableContent, ["detail": [["loc": ["query", .string(name)], "msg": "Input should be a valid datetime", "type": "datetime_parsing", "url": "https://docs.fal.ai/errors#datetime_parsing"]]])
            }
            query[keyPath: target] = date
        }
        if let limit = parameters.get("limit").flatMap(Int.init) { query.limit = min(max(limit, 1), 100) }
        query.cursor = parameters.get("cursor").flatMap(Int.init)
        query.status = parameters.get("status")
        query.requestID = parameters.get("request_id")
        query.expandPayloads = parameters.getAll("expand").contains("payloads")
        return Self.json(.ok, await state.listRequests(query, key: key, now: Date()))
    }

    /// `/_emulator/…`: counters, knobs, held requests and a summary of every request. Never faulted.
    func admin(_ path: [String], request: Request) async throws -> Response {
        switch (request.method, path) {
        case (.get, ["counters"]):
            return Self.encoded(await state.counters())
        case (.get, ["config"]):
            return Self.encoded(await state.configuration)
        case (.put, ["config"]):
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            do {
                let configuration = try JSONDecoder().decode(EmulatorConfiguration.self, from: Data(body.readableBytesView))
                await state.setConfiguration(configuration)
                return Self.encoded(configuration)
            } catch {
                return Self.json(.badRequest, ["detail": .string("not a configuration: \(error)")])
            }
        case (.post, ["release"]):
            return Self.json(.ok, ["released": .int(Int64(await state.releaseHeldRequests()))])
        case (.post, ["release-answers"]):
            return Self.json(.ok, ["released": .int(Int64(await state.releaseSubmitAnswers()))])
        case (.get, ["requests"]):
            return Self.encoded(await state.requestSummaries())
        case (.get, ["jwks.json"]):
            return Self.json(.ok, state.webhookKeySet)
        case (.get, ["health"]):
            return Self.json(.ok, ["status": "ok"])
        default:
            return Self.json(.notFound, ["detail": "admin calls: GET counters, GET|PUT config, POST release, POST release-answers, GET requests, GET jwks.json, GET health"])
        }
    }
}
