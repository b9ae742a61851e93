import FalClient
import FalEmulator
import Foundation
import KlingCore
import Logging
import Testing
import TestSupport

/// Every error class, each produced by an emulator knob rather than a mock.
@Suite("Typed errors produced by the emulator")
struct ErrorClassTests {
    func fault(_ kind: FaultKind, on routes: Set<EmulatorRouteKind>? = nil, limit: Int? = nil) -> @Sendable (inout EmulatorConfiguration) -> Void {
        { $0.faults = [FaultRule(kind: kind, probability: 1, routes: routes, limit: limit)] }
    }

    @Test("a 422 at submit is a permanent validation error naming the field")
    func validationAtSubmit() async throws {
        try await EmulatorHarness.run(configure: { $0.validateInputAt = .submit }) { harness in
            let tooLong: JSONValue = ["prompt": .string(String(repeating: "a", count: 2501)), "duration": "11"]
            let error = await #expect(throws: FalError.self) {
                try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: tooLong)
            }
            guard case .validation(let issues)? = error?.kind else { Issue.record("expected validation, got \(String(describing: error))"); return }
            #expect(issues.map(\.fieldPath) == ["prompt", "duration"])
            #expect(issues.map(\.type) == ["string_too_long", "enum"])
            #expect(error?.httpStatus == 422)
            #expect(error?.retryableHeader == false)
            #expect(error?.disposition == .permanent)
            #expect(error?.description.contains("prompt: String should have at most 2500 characters") == true)
            #expect(await harness.emulator.state.counters().requestsCreated == 0)
        }
    }

    @Test("a 422 as the result names nested fields, and the references past what was given")
    func validationAtResult() async throws {
        try await EmulatorHarness.run { harness in
            let bad: JSONValue = [
                "prompt": "@Element2 meets @Image1",
                "elements": [["frontal_image_url": "https://cdn.invalid/face.png"]],
            ]
            let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: bad)
            let status = try await harness.waitUntilCompleted(receipt.handle)
            guard case .completed(let message?, _) = status.state else { Issue.record("expected a failed completion"); return }
            #expect(!message.isEmpty)
            let error = await #expect(throws: FalError.self) { try await harness.client.result(receipt.handle) }
            guard case .validation(let issues)? = error?.kind else { Issue.record("expected validation"); return }
            #expect(Set(issues.map(\.fieldPath)) == ["elements[0].frontal_image_url", "prompt"])
            #expect(issues.filter { $0.fieldPath == "prompt" }.count == 2)
            #expect(error?.disposition == .permanent)
        }
    }

    @Test("more than 7 inputs is refused")
    func tooManyInputs() async throws {
        try await EmulatorHarness.run(configure: { $0.validateInputAt = .submit }) { harness in
            let urls = (1...5).map { JSONValue.string("https://example.com/\($0).png") }
            let elements = (1...3).map { JSONValue.object(["frontal_image_url": .string("https://example.com/e\($0).png")]) }
            let many: JSONValue = ["prompt": "a scene", "image_urls": .array(urls), "elements": .array(elements)]
            let error = await #expect(throws: FalError.self) { try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: many) }
            guard case .validation(let issues)? = error?.kind else { Issue.record("expected validation"); return }
            #expect(issues.map(\.type) == ["sequence_too_long"])
            #expect(issues.first?.fieldPath == "body")
        }
    }

    @Test("401 and 403 pause all submission, and the key never shows in the error")
    func unauthorized() async throws {
        try await EmulatorHarness.run(configure: { $0.acceptedKeys = ["another-key"]; $0.forbiddenKeys = [] }) { harness in
            let error = await #expect(throws: FalError.self) { try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput) }
            #expect(error?.kind == .unauthorized)
            #expect(error?.httpStatus == 401)
            #expect(error?.disposition == .pauseSubmissions)
            #expect(error.map { "\($0)" }?.contains("test-key-0123456789") == false)
        }
        try await EmulatorHarness.run(configure: { $0.forbiddenKeys = ["test-key-0123456789"] }) { harness in
            let error = await #expect(throws: FalError.self) { try await harness.client.upload(Data([1]), fileName: "a.png", contentType: "image/png") }
            #expect(error?.kind == .unauthorized)
            #expect(error?.httpStatus == 403)
            #expect(error.map { "\($0)" }?.contains("test-key-0123456789") == false)
        }
    }

    @Test("429 carries fal's Retry-After")
    func rateLimited() async throws {
        try await EmulatorHarness.run(configure: { $0.retryAfterSeconds = 2.5; $0.faults = [FaultRule(kind: .rateLimit, probability: 1)] }) { harness in
            let error = await #expect(throws: FalError.self) { try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput) }
            #expect(error?.kind == .rateLimited(retryAfter: .milliseconds(2500)))
            #expect(error?.disposition == .retry(after: .milliseconds(2500)))
            #expect(await harness.emulator.state.counters().faults(.rateLimit) == 1)
        }
    }

    @Test("the per-key concurrency limit answers 429 until a request finishes")
    func perKeyConcurrencyLimit() async throws {
        try await EmulatorHarness.run(configure: { $0.perKeyConcurrencyLimit = 1; $0.holdRequests = true }) { harness in
            let first = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: input("one"))
            let error = await #expect(throws: FalError.self) { try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: input("two")) }
            #expect(error?.kind == .rateLimited(retryAfter: .seconds(1)))
            #expect(error?.detail?.contains("Concurrency limit of 1") == true)
            _ = try await harness.client.cancel(first.handle)
            _ = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: input("two"))
            let counters = await harness.emulator.state.counters()
            #expect(counters.concurrencyRejections == 1)
            #expect(counters.maxActivePerKey == 1)
        }
    }

    @Test("5xx from fal are retryable server errors with fal's error_type", arguments: [
        (FaultKind.serverError500, 500, "internal_error"), (.serverError502, 502, "runner_incomplete_response"),
        (.serverError503, 503, "runner_scheduling_failure"), (.serverError504, 504, "request_timeout"),
    ])
    func serverErrors(kind: FaultKind, status: Int, type: String) async throws {
        try await EmulatorHarness.run(configure: fault(kind, on: [.status])) { harness in
            let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput)
            let error = await #expect(throws: FalError.self) { try await harness.client.status(receipt.handle) }
            #expect(error?.kind == .serverError(errorType: type))
            #expect(error?.httpStatus == status)
            #expect(error?.errorType == type)
            #expect(error?.falRequestID != nil)
            #expect(error?.isRetryable == true)
            #expect(error?.reason == type)
        }
    }

    @Test("a 5xx answer to a submit from fal itself is definite: nothing was created")
    func serverErrorOnSubmitIsDefinite() async throws {
        try await EmulatorHarness.run(configure: fault(.serverError503, on: [.submit])) { harness in
            let error = await #expect(throws: FalError.self) { try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput) }
            #expect(error?.kind == .serverError(errorType: "runner_scheduling_failure"))
            #expect(error?.disposition == .retry(after: nil))
            #expect(await harness.emulator.state.counters().requestsCreated == 0)
        }
    }

    @Test("a proxy's 502 page is a server error on status, but an unknown outcome on submit")
    func gatewayErrors() async throws {
        try await EmulatorHarness.run(configure: fault(.gatewayError)) { harness in
            let error = await #expect(throws: FalError.self) { try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput) }
            guard case .submitOutcomeUnknown? = error?.kind else { Issue.record("expected unknown outcome, got \(String(describing: error))"); return }
            #expect(error?.disposition == .reconcile)
            // The gateway had forwarded it: fal has the request.
            #expect(await harness.emulator.state.counters().requestsCreated == 1)
        }
        try await EmulatorHarness.run(configure: fault(.gatewayError, on: [.status])) { harness in
            let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput)
            let error = await #expect(throws: FalError.self) { try await harness.client.status(receipt.handle) }
            #expect(error?.kind == .serverError(errorType: nil))
            #expect(error?.falRequestID == nil)
            #expect(error?.detail?.hasPrefix("non-JSON body: <html>") == true)
        }
    }

    @Test("a reset on an idempotent call is a transport error")
    func resetOnStatus() async throws {
        try await EmulatorHarness.run(configure: fault(.connectionReset, on: [.status])) { harness in
            let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput)
            let error = await #expect(throws: FalError.self) { try await harness.client.status(receipt.handle) }
            guard case .transport? = error?.kind else { Issue.record("expected transport, got \(String(describing: error))"); return }
            #expect(error?.disposition == .retry(after: nil))
        }
    }

    @Test("a reset after the submit body was sent is an unknown outcome, not a retry")
    func resetOnSubmit() async throws {
        try await EmulatorHarness.run(configure: fault(.connectionReset, on: [.submit])) { harness in
            let error = await #expect(throws: FalError.self) { try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput) }
            guard case .submitOutcomeUnknown? = error?.kind else { Issue.record("expected unknown outcome, got \(String(describing: error))"); return }
            #expect(await harness.emulator.state.counters().requestsCreated == 0)
        }
    }

    @Test("a submit whose answer is lost is unknown, and the listing finds the request once it ended")
    func droppedSubmitAnswer() async throws {
        try await EmulatorHarness.run(configure: fault(.dropSubmitAnswer)) { harness in
            let since = Date().addingTimeInterval(-1)
            let error = await #expect(throws: FalError.self) { try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput) }
            guard case .submitOutcomeUnknown? = error?.kind else { Issue.record("expected unknown outcome"); return }
            let summaries = await harness.emulator.state.requestSummaries()
            #expect(summaries.count == 1)
            let handle = FalRequestHandle(requestID: summaries[0].requestID, endpoint: .klingO1ReferenceToVideo, queueBase: harness.baseURL)
            _ = try await harness.waitUntilCompleted(handle)
            let listed = try await harness.client.listRequests(endpoint: .klingO1ReferenceToVideo, since: since)
            #expect(listed.items.first { $0.input == sampleInput }?.requestID == summaries[0].requestID)
        }
    }

    @Test("a timeout: transport on status, unknown outcome on submit")
    func timeouts() async throws {
        var timeouts = FalClient.Timeouts()
        timeouts.call = .milliseconds(300)
        timeouts.submit = .milliseconds(300)
        try await EmulatorHarness.run(configure: { $0.slowAnswerSeconds = 3; $0.faults = [FaultRule(kind: .slowAnswer, probability: 1, routes: [.status, .submit], limit: 2)] }, timeouts: timeouts) { harness in
            let error = await #expect(throws: FalError.self) { try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput) }
            guard case .submitOutcomeUnknown(let why)? = error?.kind else { Issue.record("expected unknown outcome, got \(String(describing: error))"); return }
            #expect(why.contains("timed out"))
            let handle = FalRequestHandle(requestID: "00000000-0000-0000-0000-000000000000", endpoint: .klingO1ReferenceToVideo, queueBase: harness.baseURL)
            let statusError = await #expect(throws: FalError.self) { try await harness.client.status(handle) }
            #expect(statusError?.kind == .transport("timed out"))
        }
    }

    @Test("nothing listening: the submit was never sent and may be retried freely")
    func connectionRefused() async throws {
        // Find a port with nothing on it: start an emulator, note its URL, stop it.
        let deadURL = try await FalEmulator().withRunning { $0 }
        let http = FalClient.makeHTTPClient()
        defer { Task { try? await http.shutdown() } }
        let client = FalClient(http: http, endpoints: .init(baseURL: deadURL), key: EmulatorHarness.key, logger: Logger(label: "test"))
        let error = await #expect(throws: FalError.self) { try await client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput) }
        guard case .transport(let why)? = error?.kind else { Issue.record("expected transport, got \(String(describing: error))"); return }
        #expect(why.contains("not sent"))
        #expect(error?.disposition == .retry(after: nil))
        try await http.shutdown()
    }

    @Test("a non-JSON 200 is malformed on status, unknown on submit")
    func nonJSON() async throws {
        try await EmulatorHarness.run(configure: fault(.nonJSON, on: [.status, .submit], limit: 2)) { harness in
            let error = await #expect(throws: FalError.self) { try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput) }
            guard case .submitOutcomeUnknown? = error?.kind else { Issue.record("expected unknown outcome"); return }
            let id = await harness.emulator.state.requestSummaries()[0].requestID
            let handle = FalRequestHandle(requestID: id, endpoint: .klingO1ReferenceToVideo, queueBase: harness.baseURL)
            let statusError = await #expect(throws: FalError.self) { try await harness.client.status(handle) }
            guard case .malformedResponse? = statusError?.kind else { Issue.record("expected malformed"); return }
            #expect(statusError?.isRetryable == true)
        }
    }

    @Test("unknown requests are not found")
    func notFound() async throws {
        try await EmulatorHarness.run { harness in
            let handle = FalRequestHandle(requestID: "no-such-request", endpoint: .klingO1ReferenceToVideo, queueBase: harness.baseURL)
            let error = await #expect(throws: FalError.self) { try await harness.client.result(handle) }
            #expect(error?.kind == .notFound)
            #expect(error?.disposition == .permanent)
        }
    }

    @Test("a request that fails at fal: retryable runner error, or permanent content policy")
    func jobFailures() async throws {
        try await EmulatorHarness.run(configure: fault(.jobFailure, limit: 1)) { harness in
            let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput)
            let status = try await harness.waitUntilCompleted(receipt.handle)
            #expect(status.state == .completed(error: "The runner encountered an internal server error", errorType: "runner_server_error"))
            let error = await #expect(throws: FalError.self) { try await harness.client.result(receipt.handle) }
            #expect(error?.kind == .serverError(errorType: "runner_server_error"))
            #expect(error?.isRetryable == true)
        }
        try await EmulatorHarness.run(configure: fault(.jobRejected, limit: 1)) { harness in
            let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput)
            _ = try await harness.waitUntilCompleted(receipt.handle)
            let error = await #expect(throws: FalError.self) { try await harness.client.result(receipt.handle) }
            guard case .validation(let issues)? = error?.kind else { Issue.record("expected validation"); return }
            #expect(issues.first?.type == "content_policy_violation")
            #expect(error?.isRetryable == false)
        }
    }

    @Test("upload errors are classified like the others")
    func uploadErrors() async throws {
        try await EmulatorHarness.run(configure: fault(.serverError503, on: [.uploadInitiate])) { harness in
            let error = await #expect(throws: FalError.self) { try await harness.client.upload(Data([1]), fileName: "a.png", contentType: "image/png") }
            #expect(error?.operation == .upload)
            #expect(error?.kind == .serverError(errorType: "runner_scheduling_failure"))
        }
        try await EmulatorHarness.run(configure: fault(.connectionReset, on: [.uploadPut])) { harness in
            let error = await #expect(throws: FalError.self) { try await harness.client.upload(Data([1]), fileName: "a.png", contentType: "image/png") }
            guard case .transport? = error?.kind else { Issue.record("expected transport"); return }
        }
    }

    @Test("listing errors are classified too")
    func listingErrors() async throws {
        try await EmulatorHarness.run(configure: fault(.rateLimit, on: [.listRequests])) { harness in
            let error = await #expect(throws: FalError.self) { try await harness.client.listRequests(endpoint: .klingO1ReferenceToVideo, since: Date()) }
            #expect(error?.operation == .listRequests)
            #expect(error?.kind == .rateLimited(retryAfter: .seconds(1)))
        }
    }
}
