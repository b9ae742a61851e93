import Foundation
import KlingCore

/// Which fal call failed; part of every error's context.
public enum FalOperation: String, Sendable, Codable, CaseIterable {
    case submit, status, result, cancel, upload, listRequests = "list-requests", download
}

/// A failed fal call, typed so that a scheduler can decide what to do next without reading text.
///
/// Every error carries its context (operation, URL, HTTP status, fal's `detail`, fal's request id header)
/// and never the key: the client never puts request headers into errors.
public struct FalError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, in the terms that decide the next step.
    public enum Kind: Sendable, Equatable {
        /// The model rejected the input (422 detail array, or 400 `bad_request`): resending the same input fails again.
        case validation([FalValidationIssue])
        /// 401 or 403: the key is missing, wrong or revoked. Every other submission would fail the same way.
        case unauthorized
        /// 429: over the key's rate or concurrency limit; `retryAfter` is fal's `Retry-After` when it sent one.
        case rateLimited(retryAfter: Duration?)
        /// fal or its runner failed (5xx, 499, or an `error_type` from the request errors table).
        case serverError(errorType: String?)
        /// The connection failed or timed out on a call that is safe to repeat.
        case transport(String)
        /// A submit whose body reached the socket but whose answer never came: fal may or may not have the request.
        case submitOutcomeUnknown(String)
        /// An answer that is not what the protocol promises (not JSON, missing fields, a wrong length).
        case malformedResponse(String)
        /// 404 or 410: the request or file does not exist (any more). Result files expire.
        case notFound
        /// Any other 4xx: our request was wrong in a way retrying will not fix.
        case rejected
        /// Not sent: the URL is on an origin the key must never go to (not one of the configured fal hosts).
        case foreignOrigin(String)
    }

    public let kind: Kind
    public let operation: FalOperation
    /// The URL that was called, without its query string.
    public let url: String
    /// The HTTP status, when an answer arrived.
    public let httpStatus: Int?
    /// fal's `detail` (or a summary of the answer), for people.
    public let detail: String?
    /// fal's `error_type` (also sent as `X-Fal-Error-Type`).
    public let errorType: String?
    /// `X-Fal-Retryable` when fal sent it: its word overrides our table.
    public let retryableHeader: Bool?
    /// `x-fal-request-id`: present when the answer came from fal itself rather than a proxy in between.
    public let falRequestID: String?

    public init(
        kind: Kind, operation: FalOperation, url: String, httpStatus: Int? = nil, detail: String? = nil,
        errorType: String? = nil, retryableHeader: Bool? = nil, falRequestID: String? = nil
    ) {
        self.kind = kind
        self.operation = operation
        self.url = Self.stripQuery(url)
        self.httpStatus = httpStatus
        self.detail = detail
        self.errorType = errorType
        self.retryableHeader = retryableHeader
        self.falRequestID = falRequestID
    }

    /// Whether sending the same call again may succeed.
    public var isRetryable: Bool {
        if let retryableHeader { return retryableHeader }
        switch kind {
        case .validation, .unauthorized, .notFound, .rejected, .foreignOrigin: return false
        case .rateLimited, .transport, .submitOutcomeUnknown, .malformedResponse: return true
        case .serverError(let errorType): return errorType.map(FalErrorType.isRetryable) ?? true
        }
    }

    /// What a scheduler should do about this error.
    public var disposition: Disposition {
        switch kind {
        case .unauthorized: return .pauseSubmissions
        case .submitOutcomeUnknown: return .reconcile
        case .rateLimited(let retryAfter): return .retry(after: retryAfter)
        default: return isRetryable ? .retry(after: nil) : .permanent
        }
    }

    /// The next step for a job or the whole runner.
    public enum Disposition: Sendable, Equatable {
        /// Give up on this job: the same input will fail the same way.
        case permanent
        /// Try again, not before `after` when fal said so, else after the retry policy's backoff.
        case retry(after: Duration?)
        /// Stop every submission: the key is bad, and each further call would fail too.
        case pauseSubmissions
        /// Find out whether fal has the request before doing anything that could pay twice.
        case reconcile
    }

    /// A short machine-readable reason for metrics and attempt records: `http_503`, `rate_limited`, `transport`.
    public var reason: String {
        switch kind {
        case .validation: return "validation"
        case .unauthorized: return "unauthorized"
        case .rateLimited: return "rate_limited"
        case .serverError(let errorType): return errorType ?? "http_\(httpStatus ?? 0)"
        case .transport: return "transport"
        case .submitOutcomeUnknown: return "submit_outcome_unknown"
        case .malformedResponse: return "malformed_response"
        case .notFound: return "not_found"
        case .rejected: return "http_\(httpStatus ?? 0)"
        case .foreignOrigin: return "foreign_origin"
        }
    }

    public var description: String {
        var text = "fal \(operation.rawValue) \(url)"
        if let httpStatus { text += " answered \(httpStatus)" }
        switch kind {
        case .validation(let issues):
            let listed = issues.map(\.description).joined(separator: "; ")
            text += ": the model rejected the input: \(listed.isEmpty ? (detail ?? "no detail") : listed)"
            return text
        case .unauthorized:
            text += ": the fal key was refused (check FAL_KEY or the key file)"
        case .rateLimited(let retryAfter):
            text += ": rate limited"
            if let retryAfter { text += ", retry after \(retryAfter.formattedSeconds)" }
        case .serverError(let errorType):
            text += ": server error" + (errorType.map { " \($0)" } ?? "")
        case .transport(let message):
            text += ": connection failed: \(message)"
        case .submitOutcomeUnknown(let message):
            text += ": no answer after the request was sent (\(message)); fal may have accepted it"
        case .malformedResponse(let message):
            text += ": unexpected answer: \(message)"
        case .notFound:
            text += ": not found (expired or never existed)"
        case .rejected:
            text += ": request rejected"
        case .foreignOrigin(let origin):
            text += ": not sent, because \(origin) is not one of the configured fal hosts and the key goes to those only"
        }
        if let detail, !detail.isEmpty { text += ": \(detail)" }
        return text
    }

    private static func stripQuery(_ url: String) -> String {
        guard let index = url.firstIndex(of: "?") else { return url }
        return String(url[..<index])
    }
}

/// One entry of a 422 `detail` array: where (field path), what (message) and which kind (type).
public struct FalValidationIssue: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The `loc` array as given (`["body", "elements", 0, "frontal_image_url"]`), as strings.
    public var location: [String]
    public var message: String
    public var type: String
    public var url: String?
    public var context: JSONValue?

    public init(location: [String], message: String, type: String, url: String? = nil, context: JSONValue? = nil) {
        self.location = location
        self.message = message
        self.type = type
        self.url = url
        self.context = context
    }

    /// The field path in the spec's own notation: `elements[0].frontal_image_url`, without the leading `body`.
    public var fieldPath: String {
        var path = ""
        for (index, part) in location.enumerated() {
            if index == 0 && part == "body" && location.count > 1 { continue }
            if let number = Int(part) {
                path += "[\(number)]"
            } else {
                path += path.isEmpty ? part : ".\(part)"
            }
        }
        return path.isEmpty ? "body" : path
    }

    public var description: String { "\(fieldPath): \(message) (\(type))" }
}

/// fal's request error types (the `error_type` field and `X-Fal-Error-Type` header) and whether each may pass.
public enum FalErrorType {
    /// Types for which sending the same request again cannot help.
    static let permanent: Set<String> = ["bad_request", "client_cancelled"]

    /// Whether a request that failed with `errorType` may succeed if sent again.
    /// Unknown types count as retryable: fal does not bill 5xx failures, and new types are mostly infrastructure.
    public static func isRetryable(_ errorType: String) -> Bool {
        !permanent.contains(errorType)
    }
}

extension Duration {
    /// `1.5 s`, for messages.
    public var formattedSeconds: String {
        let seconds = Double(components.seconds) + Double(components.attoseconds) / 1e18
        return seconds.rounded() == seconds ? "\(Int(seconds)) s" : String(format: "%.1f s", seconds)
    }
}
