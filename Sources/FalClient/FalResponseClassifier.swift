import Foundation
import KlingCore

/// An HTTP answer reduced to what classification needs; headers are lower-cased names.
public struct FalHTTPAnswer: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: Data

    public init(status: Int, headers: [String: String], body: Data) {
        self.status = status
        self.headers = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { first, _ in first })
        self.body = body
    }

    public func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// Turns an HTTP answer into a typed `FalError`, following the protocol page's error tables.
///
/// A pure function of the answer (and the clock, for `Retry-After` dates), so every branch is testable
/// without a network.
public enum FalResponseClassifier {
    /// Nil for a 2xx answer; otherwise the error it stands for.
    public static func error(
        for answer: FalHTTPAnswer, operation: FalOperation, url: String, now: Date = Date()
    ) -> FalError? {
        guard !(200..<300).contains(answer.status) else { return nil }
        let body = try? JSONValue.parse(answer.body)
        let errorType = body?["error_type"]?.stringValue ?? answer.header("x-fal-error-type")
        let retryable = answer.header("x-fal-retryable").flatMap(parseBool)
        let issues = validationIssues(in: body)
        let detail = detailText(body: body, rawBody: answer.body, issues: issues)
        let kind: FalError.Kind
        switch answer.status {
        case 401, 403:
            kind = .unauthorized
        case 404, 410:
            kind = .notFound
        case 429:
            kind = .rateLimited(retryAfter: answer.header("retry-after").flatMap { parseRetryAfter($0, now: now) })
        case 499, 500...599:
            kind = .serverError(errorType: errorType)
        case 400...499:
            if let issues, !issues.isEmpty {
                kind = .validation(issues)
            } else if answer.status == 422 {
                kind = .validation([])
            } else {
                kind = .rejected
            }
        default:
            kind = .malformedResponse("unexpected HTTP status \(answer.status)")
        }
        return FalError(
            kind: kind, operation: operation, url: url, httpStatus: answer.status, detail: detail,
            errorType: errorType, retryableHeader: retryable, falRequestID: answer.header("x-fal-request-id")
        )
    }

    /// `Retry-After` as delay-seconds or an HTTP date; nil when unreadable. Never negative.
    public static func parseRetryAfter(_ value: String, now: Date = Date()) -> Duration? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(trimmed), seconds.isFinite, seconds >= 0 {
            return .milliseconds(Int64((min(seconds, 86_400) * 1000).rounded()))
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: trimmed) else { return nil }
        let seconds = max(0, min(date.timeIntervalSince(now), 86_400))
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    /// The `detail` array of a model error, when the body has one.
    static func validationIssues(in body: JSONValue?) -> [FalValidationIssue]? {
        guard let entries = body?["detail"]?.arrayValue else { return nil }
        return entries.compactMap { entry -> FalValidationIssue? in
            guard case .object = entry else { return nil }
            let location = (entry["loc"]?.arrayValue ?? []).map { part -> String in
                if let text = part.stringValue { return text }
                if let number = part.intValue { return String(number) }
                return part.canonicalString()
            }
            var context = entry["ctx"]
            if let input = entry["input"] {
                var merged = context?.objectValue ?? [:]
                merged["input"] = input
                context = .object(merged)
            }
            return FalValidationIssue(
                location: location,
                message: entry["msg"]?.stringValue ?? "no message",
                type: entry["type"]?.stringValue ?? "unknown",
                url: entry["url"]?.stringValue,
                context: context
            )
        }
    }

    private static func detailText(body: JSONValue?, rawBody: Data, issues: [FalValidationIssue]?) -> String? {
        if let text = body?["detail"]?.stringValue { return text }
        if let issues, !issues.isEmpty { return issues.map(\.description).joined(separator: "; ") }
        if body == nil, !rawBody.isEmpty {
            // Not JSON (a proxy's HTML page, say): keep a short, printable excerpt.
            let text = String(decoding: rawBody.prefix(200), as: UTF8.self)
            let printable = text.unicodeScalars.map { $0.properties.isWhitespace || $0.value >= 0x20 ? Character($0) : "?" }
            return "non-JSON body: " + String(printable).split(whereSeparator: \.isNewline).joined(separator: " ")
        }
        return nil
    }

    private static func parseBool(_ text: String) -> Bool? {
        switch text.trimmingCharacters(in: .whitespaces).lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: return nil
        }
    }
}
