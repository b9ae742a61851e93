/// A fault the emulator can inject, and what it looks like on the wire.
public enum FaultKind: String, Sendable, Codable, CaseIterable {
    /// 429 with `Retry-After` and `{detail}`.
    case rateLimit = "429"
    /// 500 `{detail, error_type: internal_error}` with `X-Fal-Error-Type` and `x-fal-request-id`.
    case serverError500 = "500"
    /// 502 `runner_incomplete_response`, from fal (with `x-fal-request-id`).
    case serverError502 = "502"
    /// 503 `runner_scheduling_failure`, from fal.
    case serverError503 = "503"
    /// 504 `request_timeout`, from fal.
    case serverError504 = "504"
    /// 502 with an HTML body and no `x-fal-request-id`: a proxy in between failed. On submit the request was forwarded.
    case gatewayError = "gateway"
    /// The whole request is read, then the connection is closed without an answer. On submit, the request is not created.
    case connectionReset = "reset"
    /// Submit only: the request is created and runs, but the connection is closed before the answer.
    case dropSubmitAnswer = "drop-answer"
    /// The answer comes `slowAnswerSeconds` late.
    case slowAnswer = "slow"
    /// 200 with an HTML body. On submit, the request was created first (a garbled answer).
    case nonJSON = "non-json"
    /// Downloads only: the full `Content-Length` is promised, then the connection is cut part-way.
    case truncatedDownload = "truncate"
    /// Submit only: the request runs and then fails with `runner_server_error` (retryable, 500 on result).
    case jobFailure = "job-failure"
    /// Submit only: the request runs and then fails with a 422 `content_policy_violation` (not retryable).
    case jobRejected = "job-rejected"
    /// Status stream only: the first event is sent, then the stream is closed before COMPLETED.
    case streamCut = "stream-cut"
    /// Status stream only: the stream opens (200, headers) and then sends nothing.
    case streamSilent = "stream-silent"
    /// Status stream only: after COMPLETED the stream stays open (a comment every `streamIntervalSeconds`) until the
    /// client closes it.
    case streamLinger = "stream-linger"
    /// Webhooks only: the request's webhook is never sent.
    case webhookLost = "webhook-lost"
    /// Webhooks only: the webhook is delivered twice (two deliveries, each signed).
    case webhookDuplicate = "webhook-duplicate"
    /// Webhooks only: instead of the real webhook, one signed with a key that is not in the key set is sent.
    case webhookForged = "webhook-forged"

    /// The calls a rule of this kind applies to when it names none, and the only ones it may name.
    public var defaultRoutes: Set<EmulatorRouteKind> {
        switch self {
        case .dropSubmitAnswer, .jobFailure, .jobRejected: return [.submit]
        case .truncatedDownload: return [.download]
        case .streamCut, .streamSilent, .streamLinger: return [.statusStream]
        case .webhookLost, .webhookDuplicate, .webhookForged: return [.webhook]
        case .nonJSON: return [.submit, .status, .result, .listRequests, .uploadInitiate]
        case .rateLimit, .serverError500, .serverError502, .serverError503, .serverError504, .gatewayError:
            return [.submit, .status, .statusStream, .result, .cancel, .listRequests, .uploadInitiate]
        case .connectionReset, .slowAnswer:
            return [.submit, .status, .statusStream, .result, .cancel, .listRequests, .uploadInitiate, .uploadPut, .download]
        }
    }
}

/// "Inject `kind` into `probability` of the calls to `routes`, at most `limit` times."
public struct FaultRule: Sendable, Codable, Equatable, CustomStringConvertible {
    public var kind: FaultKind
    public var probability: Double
    /// The calls it applies to; nil means the kind's default calls.
    public var routes: Set<EmulatorRouteKind>?
    /// How many times it may fire in all (nil: no limit), so a test can say "cut the first two transfers".
    public var limit: Int?

    public init(kind: FaultKind, probability: Double, routes: Set<EmulatorRouteKind>? = nil, limit: Int? = nil) {
        self.kind = kind
        self.probability = probability
        self.routes = routes
        self.limit = limit
    }

    /// Whether the rule may fire for a call to `route`.
    func applies(to route: EmulatorRouteKind) -> Bool {
        (routes ?? kind.defaultRoutes).contains(route)
    }

    /// Parses the CLI form `KIND=PROBABILITY[@CALL,CALL…][#LIMIT]`, e.g. `503=0.1`, `reset=0.05@status,result`,
    /// `truncate=1#2`.
    public init(parsing text: String) throws {
        let (body, limitText) = text.split(separator: "#", maxSplits: 1).map(String.init).splitPair()
        var limit: Int?
        if let limitText {
            guard let value = Int(limitText), value >= 0 else {
                throw FaultRuleError(text: text, reason: "the limit after # must be a whole number")
            }
            limit = value
        }
        let (head, routeList) = body.split(separator: "@", maxSplits: 1).map(String.init).splitPair()
        let parts = head.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, let kind = FaultKind(rawValue: parts[0]) else {
            throw FaultRuleError(text: text, reason: "expected KIND=PROBABILITY with KIND one of \(FaultKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let probability = Double(parts[1]), (0...1).contains(probability) else {
            throw FaultRuleError(text: text, reason: "the probability must be a number from 0 to 1")
        }
        var routes: Set<EmulatorRouteKind>?
        if let routeList {
            var parsed = Set<EmulatorRouteKind>()
            for name in routeList.split(separator: ",") {
                guard let route = EmulatorRouteKind(rawValue: String(name)) else {
                    throw FaultRuleError(text: text, reason: "unknown call \(name); calls are \(EmulatorRouteKind.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                guard kind.defaultRoutes.contains(route) else {
                    throw FaultRuleError(text: text, reason: "\(kind.rawValue) cannot happen on \(name); it applies to \(kind.defaultRoutes.map(\.rawValue).sorted().joined(separator: ", "))")
                }
                parsed.insert(route)
            }
            routes = parsed
        }
        self.init(kind: kind, probability: probability, routes: routes, limit: limit)
    }

    public var description: String {
        "\(kind.rawValue)=\(probability)" + (routes.map { "@" + $0.map(\.rawValue).sorted().joined(separator: ",") } ?? "")
            + (limit.map { "#\($0)" } ?? "")
    }
}

/// A `--fault` that could not be read.
public struct FaultRuleError: Error, CustomStringConvertible {
    public let text: String
    public let reason: String
    public var description: String { "bad fault rule '\(text)': \(reason)" }
}

extension Array where Element == String {
    fileprivate func splitPair() -> (String, String?) { (self.first ?? "", self.count > 1 ? self[1] : nil) }
}
