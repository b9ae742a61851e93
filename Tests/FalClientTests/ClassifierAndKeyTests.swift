import AsyncHTTPClient
@testable import FalClient
import Foundation
import KlingCore
import NIOCore
import Testing

@Suite("Response classification and key handling, without a network")
struct ClassifierAndKeyTests {
    func answer(_ status: Int, _ body: String = "", headers: [String: String] = [:]) -> FalHTTPAnswer {
        FalHTTPAnswer(status: status, headers: headers, body: Data(body.utf8))
    }

    @Test("only a connection that never opened makes a failed submit 'not sent'; a reset or timeout may follow fal reading it")
    func neverConnected() {
        #expect(FalClient.neverConnected(HTTPClientError.connectTimeout))
        #expect(FalClient.neverConnected(IOError(errnoCode: ECONNREFUSED, reason: "connect")))
        #expect(FalClient.neverConnected(ChannelError.connectTimeout(.seconds(10))))
        #expect(!FalClient.neverConnected(IOError(errnoCode: ECONNRESET, reason: "read")))
        #expect(!FalClient.neverConnected(IOError(errnoCode: EPIPE, reason: "write")))
        #expect(!FalClient.neverConnected(HTTPClientError.remoteConnectionClosed))
        #expect(!FalClient.neverConnected(HTTPClientError.deadlineExceeded))
        #expect(!FalClient.neverConnected(CancellationError()))
    }

    @Test("2xx is not an error")
    func success() {
        #expect(FalResponseClassifier.error(for: answer(200, "{}"), operation: .status, url: "u") == nil)
        #expect(FalResponseClassifier.error(for: answer(202, "{}"), operation: .cancel, url: "u") == nil)
    }

    @Test("X-Fal-Retryable overrides the table either way")
    func retryableHeader() throws {
        let retryable422 = try #require(FalResponseClassifier.error(
            for: answer(422, #"{"detail":[{"loc":["body","prompt"],"msg":"busy","type":"x"}]}"#, headers: ["X-Fal-Retryable": "true"]),
            operation: .result, url: "u"))
        #expect(retryable422.isRetryable)
        #expect(retryable422.disposition == .retry(after: nil))
        let final500 = try #require(FalResponseClassifier.error(
            for: answer(500, #"{"detail":"boom","error_type":"internal_error"}"#, headers: ["x-fal-retryable": "false"]),
            operation: .result, url: "u"))
        #expect(!final500.isRetryable)
        #expect(final500.disposition == .permanent)
    }

    @Test("error types from fal's request error table", arguments: [
        ("request_timeout", true), ("startup_timeout", true), ("runner_scheduling_failure", true),
        ("runner_connection_timeout", true), ("runner_disconnected", true), ("runner_connection_refused", true),
        ("runner_connection_error", true), ("runner_incomplete_response", true), ("runner_server_error", true),
        ("internal_error", true), ("client_disconnected", true), ("client_cancelled", false), ("bad_request", false),
    ])
    func errorTypeTable(type: String, retryable: Bool) throws {
        let status = type == "bad_request" ? 400 : 503
        let error = try #require(FalResponseClassifier.error(
            for: answer(status, #"{"detail":"x","error_type":"\#(type)"}"#), operation: .result, url: "u"))
        #expect(error.isRetryable == retryable)
        #expect(error.errorType == type)
    }

    @Test("error_type from the header when the body is not JSON")
    func errorTypeHeader() throws {
        let error = try #require(FalResponseClassifier.error(
            for: answer(503, "upstream down", headers: ["X-Fal-Error-Type": "runner_disconnected"]), operation: .status, url: "u"))
        #expect(error.kind == .serverError(errorType: "runner_disconnected"))
        #expect(error.detail == "non-JSON body: upstream down")
    }

    @Test("Retry-After as seconds and as an HTTP date")
    func retryAfter() {
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        #expect(FalResponseClassifier.parseRetryAfter("3", now: now) == .seconds(3))
        #expect(FalResponseClassifier.parseRetryAfter("0.25", now: now) == .milliseconds(250))
        #expect(FalResponseClassifier.parseRetryAfter("Tue, 14 Nov 2023 22:13:30 GMT", now: now) == .seconds(10))
        #expect(FalResponseClassifier.parseRetryAfter("Tue, 14 Nov 2023 22:00:00 GMT", now: now) == .zero)
        #expect(FalResponseClassifier.parseRetryAfter("soon", now: now) == nil)
        #expect(FalResponseClassifier.parseRetryAfter("-5", now: now) == nil)
    }

    @Test("field paths drop fal's body prefix and index lists")
    func fieldPaths() {
        #expect(FalValidationIssue(location: ["body", "elements", "1", "reference_image_urls", "0"], message: "", type: "").fieldPath
            == "elements[1].reference_image_urls[0]")
        #expect(FalValidationIssue(location: ["body"], message: "", type: "").fieldPath == "body")
        #expect(FalValidationIssue(location: ["query", "limit"], message: "", type: "").fieldPath == "query.limit")
    }

    @Test("keys come from FAL_KEY or FAL_KEY_ID + FAL_KEY_SECRET, and never print")
    func keys() throws {
        let key = try #require(FalKey.fromEnvironment(["FAL_KEY": "  abc:def-secret-value \n"]))
        #expect("\(key)" == "<fal key from FAL_KEY, redacted>")
        #expect(String(reflecting: key).contains("secret-value") == false)
        #expect(key.redact("oops abc:def-secret-value leaked") == "oops <redacted> leaked")
        let pair = try #require(FalKey.fromEnvironment(["FAL_KEY_ID": "id", "FAL_KEY_SECRET": "s3cret"]))
        #expect(pair.redact("id:s3cret") == "<redacted>")
        #expect(pair.source == "FAL_KEY_ID and FAL_KEY_SECRET")
        #expect(FalKey.fromEnvironment(["FAL_KEY": "   "]) == nil)
        #expect(FalKey.fromEnvironment([:]) == nil)
        #expect(FalKey("two\nlines", source: "x") == nil)
    }

    @Test("a key file: read, trimmed, and a clear error when missing")
    func keyFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fal-key-\(UUID())").path
        try "k-123\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try FalKey.read(file: path).redact("k-123") == "<redacted>")
        #expect(throws: FalKeyError.self) { try FalKey.read(file: path + ".missing") }
    }

    @Test("endpoint ids split into owner, alias and subpath")
    func endpointIDs() throws {
        let id = FalEndpointID.klingO1ReferenceToVideo
        #expect(id.owner == "fal-ai")
        #expect(id.alias == "kling-video")
        #expect(id.subpath == "o1/reference-to-video")
        #expect(id.appPath == "fal-ai/kling-video")
        #expect(FalEndpointID("fal-ai") == nil)
        #expect(FalEndpointID("fal-ai//x") == nil)
        #expect(FalEndpointID("fal-ai/../x") == nil)
        #expect(FalEndpointID("fal ai/x") == nil)
    }

    @Test("one base URL redirects every service; bad ones are refused")
    func baseURL() throws {
        let url = try #require(FalEndpoints.parseBaseURL("http://127.0.0.1:8080/"))
        let endpoints = FalEndpoints(baseURL: url)
        #expect(endpoints.queue == url && endpoints.storage == url && endpoints.platform == url)
        #expect(!endpoints.isProduction)
        #expect(FalEndpoints.production.isProduction)
        #expect(FalEndpoints.parseBaseURL("ftp://x") == nil)
        #expect(FalEndpoints.parseBaseURL("not a url") == nil)
    }

    @Test("fal timestamps round-trip with and without fractions")
    func dates() throws {
        let date = Date(timeIntervalSince1970: 1_764_000_000.25)
        #expect(FalDates.parse(FalDates.format(date))?.timeIntervalSince1970 == 1_764_000_000.25)
        #expect(FalDates.parse("2025-11-24T16:00:00Z")?.timeIntervalSince1970 == 1_764_000_000)
        #expect(FalDates.parse("yesterday") == nil)
    }
}
