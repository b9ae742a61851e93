import FalClient
import Foundation

/// What a failed call means for a job: a pure function of the error, the job's counts and the clock, so that every
/// row of the table can be tested without a network (FailurePolicyTests).
struct FailurePolicy: Sendable, Equatable {
    var retry: RetryPolicy
    /// Result fetches for a request fal reports finished, before the job fails (to be fetched again by `retry`).
    var maxResultFetches: Int

    /// What to do after a submit failed.
    enum Submit: Equatable {
        /// The body may have reached fal: look for the request before anything else.
        case reconcile
        /// The key was refused: pause everything; the job tries again at `retryAt` (no attempt spent).
        case keyRefused(retryAt: Date)
        /// 429: nobody submits before `backOffUntil`; the job goes again at `retryAt` (no attempt spent).
        case rateLimited(backOffUntil: Date, retryAt: Date)
        /// The body never left: nothing can have been created; again at `retryAt` (no attempt spent).
        case notSent(retryAt: Date)
        /// A refusal that may pass: a new attempt at `at` (one attempt spent).
        case retry(at: Date)
        /// A refusal that will not pass, or the last attempt: the job fails.
        case giveUp
    }

    func afterSubmit(_ error: FalError, jobID: Int64, attempts: Int, deferrals: Int, now: Date) -> Submit {
        switch (error.disposition, error.kind) {
        case (.reconcile, _):
            return .reconcile
        case (.pauseSubmissions, _):
            return .keyRefused(retryAt: now.addingTimeInterval(60))
        case (.retry(let retryAfter), .rateLimited):
            return .rateLimited(
                backOffUntil: now + (retryAfter ?? retry.rateLimitDefault),
                retryAt: retry.rateLimitedUntil(jobID: jobID, attempt: attempts, retryAfter: retryAfter, now: now))
        case (.retry, .transport):
            return .notSent(retryAt: retry.notReachedUntil(jobID: jobID, count: deferrals + 1, now: now))
        case (.retry, _):
            if case .retry(let at) = retry.decide(jobID: jobID, attempt: attempts + 1, failure: .attemptFailed, now: now) { return .retry(at: at) }
            return .giveUp
        case (.permanent, _):
            return .giveUp
        }
    }

    /// What to do when a finished request's result call failed.
    enum Result: Equatable {
        /// fal says it finished fine: ask again after `delay`, no new attempt.
        case askAgain(after: Duration)
        /// fal finished fine but will not hand the result over: fail, to be fetched again by `retry` for free.
        case failKeepingResult
        /// fal no longer has a result that was paid for (404/410): fail; only a paid resubmission makes the video.
        case failResultGone
        /// Cancelled at fal because an operator asked: the canceller records it.
        case cancelledByOperator
        /// The request itself failed at fal and may pass: a new request at `at`.
        case newAttempt(at: Date)
        /// The request itself failed at fal for good.
        case fail
    }

    /// - Parameters:
    ///   - failedAtFal: the status said the request ended with an error.
    ///   - fetches: result calls made so far, this one included.
    func afterResult(_ error: FalError, failedAtFal: Bool, fetches: Int, jobID: Int64, attempts: Int, cancelRequested: Bool, now: Date) -> Result {
        let requestFailed = failedAtFal || error.kind.isModelRejection || error.httpStatus == 499
        if !requestFailed {
            if error.isRetryable && fetches < maxResultFetches { return .askAgain(after: retry.backoff(step: fetches, cap: .seconds(30))) }
            return error.kind == .notFound ? .failResultGone : .failKeepingResult
        }
        if error.errorType == "client_cancelled" || error.httpStatus == 499 { return cancelRequested ? .cancelledByOperator : .fail }
        if error.isRetryable, case .retry(let at) = retry.decide(jobID: jobID, attempt: attempts, failure: .attemptFailed, now: now) {
            return .newAttempt(at: at)
        }
        return .fail
    }
}

extension FalError.Kind {
    /// The model refused the input (a 422 detail array): the same input will be refused again.
    var isModelRejection: Bool {
        if case .validation = self { return true }
        return false
    }
}
