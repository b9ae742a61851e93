/// The kinds of call the emulator serves, as named in fault rules and counters.
public enum EmulatorRouteKind: String, Sendable, Codable, CaseIterable, Comparable {
    case submit, status, statusStream = "status-stream", result, cancel
    case uploadInitiate = "upload-initiate", uploadPut = "upload-put"
    case listRequests = "list-requests", download, admin
    /// `GET /.well-known/jwks.json`: the keys webhooks are signed with (never faulted).
    case webhookKeys = "webhook-keys"
    /// A webhook delivery the emulator makes (outgoing), for the `webhook-*` faults.
    case webhook

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A call recognised from its method and path: fal's queue, storage, platform API and file host, plus admin.
///
/// Matching is a pure function so the overlaps between fal's paths (`/v1/models/requests/by-endpoint` and
/// `/{owner}/{alias}/requests/{id}`) are settled in one tested place.
enum EmulatorRoute: Equatable {
    /// `POST /{owner}/{alias}[/{subpath}]`
    case submit(endpoint: String)
    /// `GET /{owner}/{alias}/requests/{id}/status`
    case status(app: String, requestID: String)
    /// `GET /{owner}/{alias}/requests/{id}/status/stream`
    case statusStream(app: String, requestID: String)
    /// `GET /{owner}/{alias}/requests/{id}`
    case result(app: String, requestID: String)
    /// `PUT /{owner}/{alias}/requests/{id}/cancel`
    case cancel(app: String, requestID: String)
    /// `POST /storage/upload/initiate`
    case uploadInitiate
    /// `PUT /_storage/upload/{token}`
    case uploadPut(token: String)
    /// `GET /v1/models/requests/by-endpoint`
    case listRequests
    /// `GET /files/results/{id}/{name}`
    case resultFile(requestID: String)
    /// `GET /files/uploads/{token}/{name}`
    case uploadedFile(token: String)
    /// `GET|PUT|POST /_emulator/{what}`
    case admin(path: [String])
    /// `GET /.well-known/jwks.json`
    case webhookKeys

    var kind: EmulatorRouteKind {
        switch self {
        case .submit: return .submit
        case .status: return .status
        case .statusStream: return .statusStream
        case .result: return .result
        case .cancel: return .cancel
        case .uploadInitiate: return .uploadInitiate
        case .uploadPut: return .uploadPut
        case .listRequests: return .listRequests
        case .resultFile, .uploadedFile: return .download
        case .admin: return .admin
        case .webhookKeys: return .webhookKeys
        }
    }

    /// Recognises a call; nil when nothing at fal answers it (the emulator says 404).
    static func match(method: String, path: String) -> EmulatorRoute? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard let first = segments.first else { return nil }
        let readMethods: Set<String> = ["GET"]
        switch first {
        case "_emulator":
            return .admin(path: Array(segments.dropFirst()))
        case ".well-known":
            return method == "GET" && segments == [".well-known", "jwks.json"] ? .webhookKeys : nil
        case "_storage":
            if method == "PUT", segments.count == 3, segments[1] == "upload" { return .uploadPut(token: segments[2]) }
            return nil
        case "storage":
            if method == "POST", segments == ["storage", "upload", "initiate"] { return .uploadInitiate }
            return nil
        case "files":
            guard readMethods.contains(method), segments.count >= 3 else { return nil }
            if segments[1] == "results" { return .resultFile(requestID: segments[2]) }
            if segments[1] == "uploads" { return .uploadedFile(token: segments[2]) }
            return nil
        case "v1":
            if method == "GET", segments == ["v1", "models", "requests", "by-endpoint"] { return .listRequests }
            return nil
        default:
            break
        }
        guard segments.count >= 2 else { return nil }
        let app = segments[0] + "/" + segments[1]
        if segments.count >= 4, segments[2] == "requests" {
            let id = segments[3]
            switch (method, Array(segments.dropFirst(4))) {
            case ("GET", []): return .result(app: app, requestID: id)
            case ("GET", ["status"]): return .status(app: app, requestID: id)
            case ("GET", ["status", "stream"]): return .statusStream(app: app, requestID: id)
            case ("PUT", ["cancel"]): return .cancel(app: app, requestID: id)
            default: return nil
            }
        }
        if method == "POST" { return .submit(endpoint: segments.joined(separator: "/")) }
        return nil
    }
}
