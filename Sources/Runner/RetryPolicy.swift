import Foundation

/// When to try again, as a pure function of (job, attempt, failure, now): no clock or random source inside,
/// so tests can check every delay exactly.
public struct RetryPolicy: Sendable, Equatable {
    /// Submissions a job may spend before it fails (rate limits and unsent submits are not counted).
    public var maxAttempts = 5
    /// The first retry's delay; each further one doubles, up to `cap`.
    public var base: Duration = .seconds(2)
    public var cap: Duration = .seconds(300)
    /// How far each delay is spread, as a fraction either way (0.25: from 75% to 125%).
    public var jitter = 0.25
    /// Wait after a 429 that named no `Retry-After`.
    public var rateLimitDefault: Duration = .seconds(5)
    /// Cap for calls that never reached fal (connection failures): they never fail a job, only wait.
    public var deferralCap: Duration = .seconds(120)

    public init() {}

    /// What kind of failure is being retried.
    public enum Failure: Sendable, Equatable {
        /// A counted attempt failed (5xx, a request that failed at fal): backoff by attempt, up to `maxAttempts`.
        case attemptFailed
        /// fal said to slow down; `retryAfter` is its `Retry-After`.
        case rateLimited(retryAfter: Duration?)
        /// The call never reached fal (or a download or status call failed); `count` is how many in a row.
        case notReached(count: Int)
    }

    /// The next step: retry at a time, or give up.
    public enum Decision: Sendable, Equatable {
        case retry(at: Date)
        case giveUp
    }

    /// - Parameters:
    ///   - jobID: spreads retries of different jobs apart, deterministically.
    ///   - attempt: counted attempts spent so far, including the one that just failed.
    public func decide(jobID: Int64, attempt: Int, failure: Failure, now: Date) -> Decision {
        switch failure {
        case .attemptFailed:
            guard attempt < maxAttempts else { return .giveUp }
            return .retry(at: now + jittered(backoff(step: attempt, cap: cap), jobID: jobID, step: attempt))
        case .rateLimited(let retryAfter):
            return .retry(at: rateLimitedUntil(jobID: jobID, attempt: attempt, retryAfter: retryAfter, now: now))
        case .notReached(let count):
            return .retry(at: notReachedUntil(jobID: jobID, count: count, now: now))
        }
    }

    /// After a 429: fal's word is a floor; spreading upwards keeps many waiting jobs from returning at one instant.
    /// A rate limit never gives up on a job.
    public func rateLimitedUntil(jobID: Int64, attempt: Int, retryAfter: Duration?, now: Date) -> Date {
        let floor = retryAfter ?? rateLimitDefault
        return now + floor + floor * (jitter * unit(jobID: jobID, step: attempt + 1000))
    }

    /// After a call that never reached fal: backoff by how many in a row, capped; it never gives up on a job.
    public func notReachedUntil(jobID: Int64, count: Int, now: Date) -> Date {
        now + jittered(backoff(step: max(1, count), cap: deferralCap), jobID: jobID, step: count + 2000)
    }

    /// `base × 2^(step-1)`, capped.
    func backoff(step: Int, cap: Duration) -> Duration {
        let exponent = min(max(step - 1, 0), 30)
        let seconds = base.seconds * pow(2, Double(exponent))
        return .seconds(min(seconds, cap.seconds))
    }

    func jittered(_ delay: Duration, jobID: Int64, step: Int) -> Duration {
        delay * (1 - jitter + 2 * jitter * unit(jobID: jobID, step: step))
    }

    /// A number in [0, 1) fixed by (jobID, step): a hash, not a random draw.
    func unit(jobID: Int64, step: Int) -> Double {
        var z = UInt64(bitPattern: jobID) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(bitPattern: Int64(step)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(1 << 53)
    }
}

extension Duration {
    /// The duration in seconds as a floating point number.
    var seconds: Double { inSeconds }
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension Date {
    static func + (date: Date, duration: Duration) -> Date { date.addingTimeInterval(duration.seconds) }
}
