import Foundation
import KlingCore

extension FalClient {
    /// Lists this key's requests to `endpoint` sent since `since`, from the platform API.
    ///
    /// The runner uses it to find a submit whose answer was lost: the request's `json_input` is compared with
    /// what was sent. fal may list a request only once it has ended.
    public func listRequests(
        endpoint: FalEndpointID, since: Date, until: Date? = nil, status: String? = nil, requestID: String? = nil,
        limit: Int = 100, cursor: String? = nil, expandPayloads: Bool = true
    ) async throws -> RequestListPage {
        var components = URLComponents(
            url: endpoints.platform.appendingPathComponent("v1/models/requests/by-endpoint"), resolvingAgainstBaseURL: false)!
        var items = [
            URLQueryItem(name: "endpoint_id", value: endpoint.rawValue),
            URLQueryItem(name: "start", value: FalDates.format(since)),
            URLQueryItem(name: "limit", value: String(min(max(limit, 1), 100))),
        ]
        if let until { items.append(URLQueryItem(name: "end", value: FalDates.format(until))) }
        if let status { items.append(URLQueryItem(name: "status", value: status)) }
        if let requestID { items.append(URLQueryItem(name: "request_id", value: requestID)) }
        if let cursor { items.append(URLQueryItem(name: "cursor", value: cursor)) }
        if expandPayloads { items.append(URLQueryItem(name: "expand", value: "payloads")) }
        components.queryItems = items
        let url = components.url!
        let body = try await sendJSON(.GET, url, operation: .listRequests)
        guard let entries = body["items"]?.arrayValue else {
            throw FalError(kind: .malformedResponse("a request listing with no items list"), operation: .listRequests, url: url.absoluteString)
        }
        // A field of a surprising kind reads as missing; an entry with no request id is skipped.
        let listed = entries.compactMap { entry -> ListedRequest? in
            guard let id = entry["request_id"]?.stringValue else { return nil }
            return ListedRequest(
                requestID: id, endpointID: entry["endpoint_id"]?.stringValue ?? endpoint.rawValue,
                sentAt: entry["sent_at"]?.stringValue.flatMap(FalDates.parse), startedAt: entry["started_at"]?.stringValue.flatMap(FalDates.parse),
                endedAt: entry["ended_at"]?.stringValue.flatMap(FalDates.parse), statusCode: entry["status_code"]?.intValue.map { Int($0) },
                input: entry["json_input"].flatMap { $0.isNull ? nil : $0 }, output: entry["json_output"].flatMap { $0.isNull ? nil : $0 })
        }
        let next = body["next_cursor"]?.stringValue
        return RequestListPage(items: listed, nextCursor: next, hasMore: body["has_more"]?.boolValue ?? (next != nil))
    }
}

/// ISO 8601 timestamps as fal's platform API writes and reads them.
public enum FalDates {
    /// `2026-11-25T08:54:00.123Z`.
    public static func format(_ date: Date) -> String { date.iso8601Milliseconds }

    /// Reads timestamps with or without fractional seconds, with `Z` or a numeric offset.
    public static func parse(_ text: String) -> Date? { Date(iso8601: text) }
}
