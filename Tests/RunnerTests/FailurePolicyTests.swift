import FalClient
import Foundation
@testable import Runner
import Testing

/// Every row of the failure table, exactly: which error leads to which next step, with the retry times it names.
@Suite("What a failed call means for a job")
struct FailurePolicyTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let url = "https://queue.fal.run/fal-ai/kling-video/o1/reference-to-video"

    var policy: FailurePolicy {
        var retry = RetryPolicy()
        retry.maxAttempts = 3
        return FailurePolicy(retry: retry, maxResultFetches: 4)
    }

    func error(_ kind: FalError.Kind, _ operation: FalOperation = .submit, status: Int? = nil, type: String? = nil) -> FalError {
        FalError(kind: kind, operation: operation, url: url, httpStatus: status, errorType: type)
    }

    /// A submit's failure, as the executor sees it, and the step it must lead to.
    struct SubmitRow: CustomTestStringConvertible, Sendable {
        let name: String
        let error: FalError
        let attempts: Int
        let expected: @Sendable (FailurePolicy, Date) -> FailurePolicy.Submit
        var testDescription: String { name }
    }

    static let submitRows: [SubmitRow] = {
        let t = FailurePolicyTests()
        return [
            SubmitRow(name: "an answer lost after the body left: look for it at fal, never resend blind",
                      error: t.error(.submitOutcomeUnknown("connection reset after the body was sent")), attempts: 0) { _, _ in .reconcile },
            SubmitRow(name: "401: pause everything, retry in a minute, no attempt spent",
                      error: t.error(.unauthorized, status: 401), attempts: 1) { _, now in .keyRefused(retryAt: now.addingTimeInterval(60)) },
            SubmitRow(name: "429 with Retry-After: fal's word is the floor for everyone",
                      error: t.error(.rateLimited(retryAfter: .seconds(7)), status: 429), attempts: 1) { policy, now in
                .rateLimited(backOffUntil: now.addingTimeInterval(7),
                             retryAt: policy.retry.rateLimitedUntil(jobID: 42, attempt: 1, retryAfter: .seconds(7), now: now))
            },
            SubmitRow(name: "429 without Retry-After: the default back-off",
                      error: t.error(.rateLimited(retryAfter: nil), status: 429), attempts: 2) { policy, now in
                .rateLimited(backOffUntil: now + policy.retry.rateLimitDefault,
                             retryAt: policy.retry.rateLimitedUntil(jobID: 42, attempt: 2, retryAfter: nil, now: now))
            },
            SubmitRow(name: "refused connection: nothing was created; wait by deferrals, no attempt spent",
                      error: t.error(.transport("connection refused")), attempts: 2) { policy, now in
                .notSent(retryAt: policy.retry.notReachedUntil(jobID: 42, count: 4, now: now))
            },
            SubmitRow(name: "503 with attempts left: a new attempt after backoff",
                      error: t.error(.serverError(errorType: nil), status: 503), attempts: 1) { policy, now in
                guard case .retry(let at) = policy.retry.decide(jobID: 42, attempt: 2, failure: .attemptFailed, now: now) else { return .giveUp }
                return .retry(at: at)
            },
            SubmitRow(name: "503 on the last attempt: the job fails",
                      error: t.error(.serverError(errorType: nil), status: 503), attempts: 2) { _, _ in .giveUp },
            SubmitRow(name: "a malformed answer to a submit is retried like a 5xx",
                      error: t.error(.malformedResponse("not JSON")), attempts: 0) { policy, now in
                guard case .retry(let at) = policy.retry.decide(jobID: 42, attempt: 1, failure: .attemptFailed, now: now) else { return .giveUp }
                return .retry(at: at)
            },
            SubmitRow(name: "400 bad_request: the same body is refused again; fail",
                      error: t.error(.rejected, status: 400, type: "bad_request"), attempts: 0) { _, _ in .giveUp },
            SubmitRow(name: "a 5xx whose error type fal calls permanent: the job fails at once",
                      error: t.error(.serverError(errorType: "bad_request"), status: 500, type: "bad_request"), attempts: 0) { _, _ in .giveUp },
            SubmitRow(name: "422: the same input is refused again; fail",
                      error: t.error(.validation([]), status: 422), attempts: 0) { _, _ in .giveUp },
            SubmitRow(name: "another origin: never sent, never retried",
                      error: t.error(.foreignOrigin("https://evil.example")), attempts: 0) { _, _ in .giveUp },
        ]
    }()

    @Test("after a submit", arguments: submitRows)
    func afterSubmit(_ row: SubmitRow) {
        let got = policy.afterSubmit(row.error, jobID: 42, attempts: row.attempts, deferrals: 3, now: now)
        #expect(got == row.expected(policy, now))
    }

    @Test("the steps that spend no attempt come at a later time, never now")
    func waitsAreInTheFuture() {
        for error in [error(.rateLimited(retryAfter: nil)), error(.transport("reset")), error(.unauthorized)] {
            switch policy.afterSubmit(error, jobID: 9, attempts: 0, deferrals: 0, now: now) {
            case .keyRefused(let at), .notSent(let at), .rateLimited(_, let at): #expect(at > now)
            default: Issue.record("\(error.kind) should wait")
            }
        }
    }

    /// A failed result call, as the executor sees it, and the step it must lead to.
    struct ResultRow: CustomTestStringConvertible, Sendable {
        let name: String
        let error: FalError
        var failedAtFal = false
        var fetches = 1
        var attempts = 1
        var cancelRequested = false
        let expected: @Sendable (FailurePolicy, Date) -> FailurePolicy.Result
        var testDescription: String { name }
    }

    static let resultRows: [ResultRow] = {
        let t = FailurePolicyTests()
        let attemptAgain: @Sendable (FailurePolicy, Date) -> FailurePolicy.Result = { policy, now in
            guard case .retry(let at) = policy.retry.decide(jobID: 42, attempt: 1, failure: .attemptFailed, now: now) else { return .fail }
            return .newAttempt(at: at)
        }
        return [
            ResultRow(name: "a 503 fetching a finished result: ask again, no new request",
                      error: t.error(.serverError(errorType: nil), .result, status: 503)) { policy, _ in
                .askAgain(after: policy.retry.backoff(step: 1, cap: .seconds(30)))
            },
            ResultRow(name: "a cut body fetching a finished result, third time: ask again with a longer wait",
                      error: t.error(.transport("reset"), .result), fetches: 3) { policy, _ in
                .askAgain(after: policy.retry.backoff(step: 3, cap: .seconds(30)))
            },
            ResultRow(name: "fetches used up: fail but keep the paid result fetchable by retry",
                      error: t.error(.serverError(errorType: nil), .result, status: 503), fetches: 4) { _, _ in .failKeepingResult },
            ResultRow(name: "a result fal will not give (403): fail, fetchable later",
                      error: t.error(.unauthorized, .result, status: 403)) { _, _ in .failKeepingResult },
            ResultRow(name: "the paid result is gone (404): only a paid resubmission makes the video",
                      error: t.error(.notFound, .result, status: 404)) { _, _ in .failResultGone },
            ResultRow(name: "a request that failed at fal with a retryable type: a new attempt",
                      error: t.error(.serverError(errorType: "internal_server_error"), .result, status: 500,
                                     type: "internal_server_error"), failedAtFal: true, expected: attemptAgain),
            ResultRow(name: "a request that failed at fal on the last attempt: fail",
                      error: t.error(.serverError(errorType: nil), .result, status: 500), failedAtFal: true, attempts: 3) { _, _ in .fail },
            ResultRow(name: "the model refused the input (422): fail, never again",
                      error: t.error(.validation([]), .result, status: 422)) { _, _ in .fail },
            ResultRow(name: "cancelled at fal because an operator asked: the canceller's",
                      error: t.error(.serverError(errorType: "client_cancelled"), .result, status: 499, type: "client_cancelled"), cancelRequested: true) { _, _ in .cancelledByOperator },
            ResultRow(name: "cancelled at fal with nobody asking: fail, not retried",
                      error: t.error(.serverError(errorType: "client_cancelled"), .result, status: 499, type: "client_cancelled")) { _, _ in .fail },
        ]
    }()

    @Test("after a result call", arguments: resultRows)
    func afterResult(_ row: ResultRow) {
        let got = policy.afterResult(row.error, failedAtFal: row.failedAtFal, fetches: row.fetches, jobID: 42,
                                     attempts: row.attempts, cancelRequested: row.cancelRequested, now: now)
        #expect(got == row.expected(policy, now))
    }
}
