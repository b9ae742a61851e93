import Foundation

/// How long to wait before the next status call, so hundreds of jobs in flight cost few calls each.
///
/// Quick at first, backing off while IN_QUEUE (more when far back in the queue), and while IN_PROGRESS aiming
/// just past the moment the job should finish, learned from fal's own `inference_time` of earlier jobs.
/// A pure function with deterministic jitter, like `RetryPolicy`.
public struct PollSchedule: Sendable, Equatable {
    public var first: Duration = .milliseconds(500)
    public var maxInQueue: Duration = .seconds(15)
    public var maxInProgress: Duration = .seconds(10)
    /// After the expected end, check this often (as a fraction of the expected run time).
    public var overdueFraction = 0.1
    public var minimum: Duration = .milliseconds(100)
    public var jitter = 0.1

    public init() {}

    /// What is known when choosing the next poll.
    public struct Situation: Sendable {
        public var jobID: Int64
        /// Status calls made so far for this request.
        public var polls: Int
        public var inProgress: Bool
        /// Calls made in the current phase (reset when the job starts running).
        public var pollsInPhase: Int
        public var queuePosition: Int?
        /// How long the job has been running, as far as we know.
        public var runningFor: Duration?
        /// The typical run time learned so far, if any.
        public var expectedRunTime: Duration?

        public init(jobID: Int64, polls: Int, inProgress: Bool, pollsInPhase: Int, queuePosition: Int? = nil,
                    runningFor: Duration? = nil, expectedRunTime: Duration? = nil) {
            self.jobID = jobID
            self.polls = polls
            self.inProgress = inProgress
            self.pollsInPhase = pollsInPhase
            self.queuePosition = queuePosition
            self.runningFor = runningFor
            self.expectedRunTime = expectedRunTime
        }
    }

    public func delay(_ situation: Situation) -> Duration {
        let raw: Duration
        var jitter = self.jitter
        if situation.polls == 0 {
            // Jobs known to finish sooner than `first` are looked at about when they should be done.
            raw = situation.expectedRunTime.map { min(first, max(minimum, $0 + $0 * 0.02)) } ?? first
        } else if situation.inProgress, let expected = situation.expectedRunTime, let running = situation.runningFor {
            let remaining = expected - running
            let margin = max(minimum, expected * 0.02)
            if remaining > .zero {
                raw = min(remaining + margin, maxInProgress)
                // Aimed at a known end: spreading it widely would only make the runner notice late.
                jitter = min(jitter, 0.02)
            } else {
                raw = min(max(minimum, expected * overdueFraction), maxInProgress)
            }
        } else if situation.inProgress {
            raw = min(first * pow(1.6, Double(situation.pollsInPhase)), maxInProgress)
        } else {
            var wait = first * pow(1.6, Double(situation.pollsInPhase))
            if let position = situation.queuePosition, position > 0, let expected = situation.expectedRunTime {
                wait = max(wait, expected * (0.25 * Double(position)))
            }
            raw = min(wait, maxInQueue)
        }
        let spread = 1 - jitter + 2 * jitter * RetryPolicy().unit(jobID: situation.jobID, step: situation.polls + 5000)
        return max(minimum, raw * spread)
    }
}

/// fal's typical run time for this endpoint, learned from finished jobs (`metrics.inference_time`).
public actor RunTimeEstimator {
    private var estimate: Double?
    private let weight: Double

    public init(weight: Double = 0.3) { self.weight = weight }

    /// Folds in one observed run time (seconds).
    public func record(_ seconds: Double) {
        guard seconds.isFinite, seconds >= 0 else { return }
        estimate = estimate.map { $0 * (1 - weight) + seconds * weight } ?? seconds
    }

    public var expected: Duration? { estimate.map { .milliseconds(Int64($0 * 1000)) } }
}
