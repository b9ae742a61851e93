import Foundation
import HTTPTypes
import Hummingbird
import KlingCore
import NIOCore

extension EmulatorResponder {
    static let falRequestID = HTTPField.Name("x-fal-request-id")!
    static let falErrorType = HTTPField.Name("X-Fal-Error-Type")!
    static let retryable = HTTPField.Name("X-Fal-Retryable")!
    static let retryAfter = HTTPField.Name("Retry-After")!

    static func json(_ status: HTTPResponse.Status, _ body: JSONValue, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body.canonicalData())))
    }

    static func encoded(_ value: some Encodable) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        // Milliseconds: the benchmarks measure notice delays from these times, and whole seconds hid up to 1 s.
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.iso8601Milliseconds)
        }
        let data = (try? encoder.encode(value)) ?? Data("null".utf8)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// A request error as fal sends it: `{detail, error_type}`, `X-Fal-Error-Type`, and fal's own request id header.
    static func falError(_ status: Int, _ detail: String, type: String, requestID: String = UUID().uuidString.lowercased()) -> Response {
        json(
            HTTPResponse.Status(code: status), ["detail": .string(detail), "error_type": .string(type)],
            headers: [falErrorType: type, falRequestID: requestID])
    }

    static func rateLimited(retryAfter seconds: Double, detail: String) -> Response {
        let value = seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
        return json(.tooManyRequests, ["detail": .string(detail)], headers: [Self.retryAfter: value])
    }

    /// Tells `FaultChannelHandler` to drop the connection instead of answering.
    static func reset() -> Response {
        Response(status: .ok, headers: [FaultChannelHandler.marker: "reset"])
    }

    /// A proxy's error page: HTML, no fal headers.
    static func gatewayPage() -> Response {
        Response(
            status: .badGateway, headers: [.contentType: "text/html"],
            body: .init(byteBuffer: ByteBuffer(string: "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>\n")))
    }

    /// A 200 whose body is not JSON, as a misbehaving proxy might send.
    static func htmlOK() -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/html"],
            body: .init(byteBuffer: ByteBuffer(string: "<html><body>Service temporarily rerouted</body></html>\n")))
    }
}
