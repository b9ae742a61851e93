import Foundation
import HTTPTypes
import Hummingbird
import KlingCore
import Logging
import NIOCore

/// Answers every call the way fal would, after drawing the fault (if any) that the knobs ask for.
struct EmulatorResponder: HTTPResponder {
    typealias Context = BasicRequestContext

    let state: EmulatorState
    let logger: Logger

    func respond(to request: Request, context: Context) async throws -> Response {
        guard let route = EmulatorRoute.match(method: request.method.rawValue, path: request.uri.path) else {
            return Self.json(.notFound, ["detail": .string("Not found: \(request.method.rawValue) \(request.uri.path)")])
        }
        if case .admin(let path) = route {
            return try await admin(path, request: request)
        }
        if route == .webhookKeys { return Self.json(.ok, state.webhookKeySet) }
        await state.callStarted()
        do {
            let response = try await answer(route, request: request)
            await state.callEnded()
            return response
        } catch {
            await state.callEnded()
            throw error
        }
    }

    private func answer(_ route: EmulatorRoute, request: Request) async throws -> Response {
        if route.kind == .submit { await state.countSubmitCall() }
        var fault = await state.drawFault(for: route.kind)
        if fault == .slowAnswer {
            let delay = await state.configuration.slowAnswerSeconds
            try await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
            fault = nil
        }
        // Faults that stop the call before fal looks at it. Submit-only faults that need the request to
        // exist first (a lost or garbled answer) are applied by the submit handler itself.
        if let fault, let early = await earlyAnswer(for: fault, route: route) {
            if fault == .connectionReset {
                // Read the whole request first, so a reset always means "the answer was lost", never "not sent".
                var request = request
                _ = try? await request.collectBody(upTo: 100 << 20)
            }
            return early
        }
        switch route {
        case .uploadPut(let token):
            return try await uploadPut(token: token, request: request)
        case .resultFile(let requestID):
            return await resultFile(requestID: requestID, request: request, truncate: fault == .truncatedDownload)
        case .uploadedFile(let token):
            return await uploadedFile(token: token)
        default:
            break
        }
        let authorization = request.headers[.authorization]
        if let refusal = await state.authorize(authorization) {
            return Self.json(HTTPResponse.Status(code: refusal.status), ["detail": .string(refusal.detail)])
        }
        let key = String(authorization!.dropFirst(4))
        switch route {
        case .submit(let endpoint):
            return try await submit(endpoint: endpoint, key: key, request: request, fault: fault)
        case .status(let app, let id):
            return await status(app: app, id: id, request: request)
        case .statusStream(let app, let id):
            return await statusStream(app: app, id: id, fault: fault)
        case .result(let app, let id):
            return await result(app: app, id: id)
        case .cancel(let app, let id):
            return await cancel(app: app, id: id)
        case .uploadInitiate:
            return try await uploadInitiate(request: request)
        case .listRequests:
            return await listRequests(request: request, key: key)
        case .uploadPut, .resultFile, .uploadedFile, .admin, .webhookKeys:
            return Self.json(.notFound, ["detail": "Not found"])
        }
    }

    /// The answer a fault gives before the call is handled; nil for faults applied later.
    private func earlyAnswer(for fault: FaultKind, route: EmulatorRoute) async -> Response? {
        switch fault {
        case .rateLimit:
            let seconds = await state.configuration.retryAfterSeconds
            return Self.rateLimited(retryAfter: seconds, detail: "Rate limit exceeded, please retry later")
        case .serverError500: return Self.falError(500, "Internal server error", type: "internal_error")
        case .serverError502: return Self.falError(502, "The runner sent an incomplete response", type: "runner_incomplete_response")
        case .serverError503: return Self.falError(503, "No runner could be allocated to handle the request", type: "runner_scheduling_failure")
        case .serverError504: return Self.falError(504, "The request exceeded the allowed processing time", type: "request_timeout")
        case .connectionReset: return Self.reset()
        case .gatewayError where route.kind != .submit: return Self.gatewayPage()
        case .nonJSON where route.kind != .submit: return Self.htmlOK()
        case .gatewayError, .nonJSON, .dropSubmitAnswer, .truncatedDownload, .jobFailure, .jobRejected, .slowAnswer, .streamCut, .streamSilent,
            .streamLinger, .webhookLost, .webhookDuplicate, .webhookForged:
            return nil
        }
    }
}
