import AsyncHTTPClient
import Foundation
import KlingCore
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

extension FalClient {
    /// Submits `input` to `endpoint`'s queue. Sends the request exactly once; never retries by itself.
    ///
    /// Throws `FalError` with kind `.submitOutcomeUnknown` when the request body was sent but no usable
    /// answer came back (timeout, reset, a gateway error that did not come from fal, a 2xx without a readable
    /// request id): the caller must reconcile through the request listing rather than submit again.
    public func submit(endpoint: FalEndpointID, input: JSONValue, options: SubmitOptions = .init()) async throws -> SubmitReceipt {
        let request = try submitRequest(endpoint: endpoint, input: input, options: options)
        let url = request.url
        let delegate = SubmitDelegate(maxBytes: 1 << 20)
        let started = ContinuousClock.now
        defer { Self.recordLatency(.submit, since: started) }
        let task = http.execute(
            request: request, delegate: delegate, eventLoop: .indifferent, deadline: .now() + TimeAmount(timeouts.submit),
            logger: nil)
        let answer: FalHTTPAnswer
        do {
            answer = try await withTaskCancellationHandler {
                try await task.futureResult.get()
            } onCancel: {
                task.cancel()
            }
        } catch {
            // Only a connection that never opened proves fal has nothing; any other failure may have come after fal
            // read the whole body, and a retry would be a second, billed request.
            // Cancellation is no proof either: the body can be on the wire before the client hears that it was sent.
            let description = Self.describeTransport(error)
            if !Task.isCancelled { contact.missed() }
            if Self.neverConnected(error) {
                throw FalError(kind: .transport(description + " (the request was not sent)"), operation: .submit, url: url.absoluteString)
            }
            throw FalError(kind: .submitOutcomeUnknown(Task.isCancelled ? "cancelled while sending" : description), operation: .submit, url: url.absoluteString)
        }
        if answer.status >= 500 { contact.missed() } else { contact.reached() }
        return try receipt(from: answer, endpoint: endpoint, url: url)
    }

    /// The submit as it goes on the wire: on the configured queue origin only, with fal's option headers.
    private func submitRequest(endpoint: FalEndpointID, input: JSONValue, options: SubmitOptions) throws -> HTTPClient.Request {
        var components = URLComponents(url: endpoints.queue.appendingPathComponent(endpoint.rawValue), resolvingAgainstBaseURL: false)!
        if let webhook = options.webhookURL {
            // Every reserved character is escaped, `+` too (URLQueryItem leaves it, and a server may read it as a space).
            var allowed = CharacterSet.urlQueryAllowed
            allowed.remove(charactersIn: "+&=?#/:")
            let value = webhook.absoluteString.addingPercentEncoding(withAllowedCharacters: allowed) ?? webhook.absoluteString
            components.percentEncodedQuery = "fal_webhook=" + value
        }
        let url = components.url!
        guard endpoints.mayReceiveKey(url) else {
            throw FalError(kind: .foreignOrigin(FalOrigin.of(url) ?? url.absoluteString), operation: .submit, url: url.absoluteString)
        }
        var headers = HTTPHeaders()
        headers.add(name: "Authorization", value: key.authorizationHeader)
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Accept", value: "application/json")
        headers.add(name: "User-Agent", value: FalClient.userAgent)
        if let timeout = options.startTimeout {
            headers.add(name: "X-Fal-Request-Timeout", value: String(max(1, timeout.components.seconds)))
        }
        if let priority = options.priority { headers.add(name: "X-Fal-Queue-Priority", value: priority.rawValue) }
        if let lifetime = options.outputLifetime {
            headers.add(name: "X-Fal-Object-Lifecycle-Preference", value: "{\"expiration_duration_seconds\": \(lifetime.components.seconds)}")
        }
        do {
            return try HTTPClient.Request(
                url: url.absoluteString, method: .POST, headers: headers, body: .byteBuffer(ByteBuffer(data: input.canonicalData())))
        } catch {
            throw FalError(kind: .rejected, operation: .submit, url: url.absoluteString, detail: "invalid request: \(error)")
        }
    }

    /// What a submit's answer means: a request handle confined to the queue origin, or the error that says what to do.
    private func receipt(from answer: FalHTTPAnswer, endpoint: FalEndpointID, url: URL) throws -> SubmitReceipt {
        let fromFal = answer.header("x-fal-request-id") != nil
        if [502, 504].contains(answer.status) && !fromFal {
            // A gateway between us and fal gave up waiting; fal may still have taken the request.
            throw FalError(
                kind: .submitOutcomeUnknown("gateway answered \(answer.status) without fal's request id"),
                operation: .submit, url: url.absoluteString, httpStatus: answer.status)
        }
        if let error = FalResponseClassifier.error(for: answer, operation: .submit, url: url.absoluteString) {
            throw error
        }
        guard let json = try? JSONValue.parse(answer.body), let requestID = json["request_id"]?.stringValue, !requestID.isEmpty
        else {
            throw FalError(
                kind: .submitOutcomeUnknown("fal answered \(answer.status) but its answer held no readable request_id"),
                operation: .submit, url: url.absoluteString, httpStatus: answer.status,
                falRequestID: answer.header("x-fal-request-id"))
        }
        let built = FalRequestHandle(requestID: requestID, endpoint: endpoint, queueBase: endpoints.queue)
        let answered = FalRequestHandle(
            requestID: requestID, endpoint: endpoint,
            statusURL: json["status_url"]?.stringValue.flatMap(URL.init(string:)) ?? built.statusURL,
            responseURL: json["response_url"]?.stringValue.flatMap(URL.init(string:)) ?? built.responseURL,
            cancelURL: json["cancel_url"]?.stringValue.flatMap(URL.init(string:)) ?? built.cancelURL
        )
        let (handle, replaced) = answered.confined(to: endpoints.queue)
        if !replaced.isEmpty {
            logger.warning(
                "fal's submit answer named request URLs on another origin; they are rebuilt on \(endpoints.queueOrigin) instead of followed",
                metadata: ["request": "\(requestID)", "named": "\(replaced.map(\.absoluteString).joined(separator: " "))"])
        }
        return SubmitReceipt(handle: handle, queuePosition: json["queue_position"]?.intValue.map { Int($0) })
    }

    /// Asks where a request is; with `logs`, fal includes the request's log lines.
    public func status(_ handle: FalRequestHandle, logs: Bool = true) async throws -> RequestStatus {
        var components = URLComponents(url: handle.statusURL, resolvingAgainstBaseURL: false)!
        if logs { components.queryItems = (components.queryItems ?? []) + [URLQueryItem(name: "logs", value: "1")] }
        let url = components.url!
        let json = try await sendJSON(.GET, url, operation: .status)
        return try Self.parseStatus(json, url: url, operation: .status)
    }

    /// A status object (the status call's answer, or one event of the status stream) as a `RequestStatus`.
    static func parseStatus(_ json: JSONValue, url: URL, operation: FalOperation) throws -> RequestStatus {
        let logLines = (json["logs"]?.arrayValue ?? []).compactMap { line -> FalLogLine? in
            guard let message = line["message"]?.stringValue else { return nil }
            return FalLogLine(message: message, level: line["level"]?.stringValue, timestamp: line["timestamp"]?.stringValue)
        }
        let state: QueueState
        switch json["status"]?.stringValue {
        case "IN_QUEUE":
            state = .inQueue(position: json["queue_position"]?.intValue.map { Int($0) })
        case "IN_PROGRESS":
            state = .inProgress
        case "COMPLETED":
            let error = json["error"]?.stringValue ?? (json["error"].flatMap { $0.isNull ? nil : $0.canonicalString() })
            state = .completed(error: error, errorType: json["error_type"]?.stringValue)
        case let other:
            throw FalError(
                kind: .malformedResponse("status is \(other.map { "\"\($0)\"" } ?? "missing")"), operation: operation,
                url: url.absoluteString, httpStatus: 200)
        }
        return RequestStatus(state: state, logs: logLines, metrics: json["metrics"])
    }

    /// Fetches a finished request's output. A request that failed at fal throws its own error (status and body).
    public func result(_ handle: FalRequestHandle) async throws -> JSONValue {
        try await sendJSON(.GET, handle.responseURL, operation: .result)
    }

    /// Asks fal to cancel a request.
    public func cancel(_ handle: FalRequestHandle) async throws -> CancelOutcome {
        let url = handle.cancelURL
        let answer = try await send(.PUT, url, operation: .cancel, timeout: timeouts.call)
        let json = try? JSONValue.parse(answer.body)
        if answer.status == 400, json?["status"]?.stringValue == "ALREADY_COMPLETED" { return .alreadyCompleted }
        if let error = FalResponseClassifier.error(for: answer, operation: .cancel, url: url.absoluteString) { throw error }
        return .requested
    }
}
