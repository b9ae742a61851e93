import Foundation
import Runner
import Testing

@Suite("Retry and poll policies are pure functions")
struct PolicyTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("counted failures back off exponentially with bounded, repeatable jitter, then give up")
    func attemptBackoff() {
        var policy = RetryPolicy()
        policy.maxAttempts = 5
        var previous = 0.0
        for attempt in 1...4 {
            guard case .retry(let at) = policy.decide(jobID: 7, attempt: attempt, failure: .attemptFailed, now: now) else {
                Issue.record("attempt \(attempt) should retry"); return
            }
            let delay = at.timeIntervalSince(now)
            let nominal = 2 * pow(2, Double(attempt - 1))
            #expect(delay >= nominal * 0.75 && delay <= nominal * 1.25, "attempt \(attempt): \(delay)")
            #expect(delay > previous * 0.74)
            previous = delay
            #expect(policy.decide(jobID: 7, attempt: attempt, failure: .attemptFailed, now: now) == .retry(at: at), "same inputs, same answer")
        }
        #expect(policy.decide(jobID: 7, attempt: 5, failure: .attemptFailed, now: now) == .giveUp)
        // Different jobs are spread apart.
        let a = policy.decide(jobID: 1, attempt: 2, failure: .attemptFailed, now: now)
        let b = policy.decide(jobID: 2, attempt: 2, failure: .attemptFailed, now: now)
        #expect(a != b)
    }

    @Test("the cap holds for late attempts")
    func cap() {
        var policy = RetryPolicy()
        policy.maxAttempts = 100
        guard case .retry(let at) = policy.decide(jobID: 3, attempt: 40, failure: .attemptFailed, now: now) else { Issue.record("retry"); return }
        #expect(at.timeIntervalSince(now) <= 300 * 1.25)
    }

    @Test("Retry-After is a floor, never shortened; without one a default applies")
    func rateLimits() {
        let policy = RetryPolicy()
        for job in Int64(1)...50 {
            guard case .retry(let at) = policy.decide(jobID: job, attempt: 1, failure: .rateLimited(retryAfter: .seconds(7)), now: now) else {
                Issue.record("retry"); return
            }
            let delay = at.timeIntervalSince(now)
            #expect(delay >= 7 && delay <= 7 * 1.25)
        }
        guard case .retry(let at) = policy.decide(jobID: 1, attempt: 99, failure: .rateLimited(retryAfter: nil), now: now) else { Issue.record("retry"); return }
        #expect(at.timeIntervalSince(now) >= 5)
    }

    @Test("calls that never reached fal wait longer each time but never give up")
    func notReached() {
        let policy = RetryPolicy()
        var delays: [Double] = []
        for count in [1, 2, 3, 10, 1000] {
            guard case .retry(let at) = policy.decide(jobID: 9, attempt: 0, failure: .notReached(count: count), now: now) else {
                Issue.record("never gives up"); return
            }
            delays.append(at.timeIntervalSince(now))
        }
        #expect(delays[0] < delays[2])
        #expect(delays.last! <= 120 * 1.25)
    }

    @Test("polling: quick first look, backs off in the queue, aims just past the learned run time")
    func polling() {
        let schedule = PollSchedule()
        func delay(_ situation: PollSchedule.Situation) -> Double { schedule.delay(situation).seconds }
        let first = delay(.init(jobID: 1, polls: 0, inProgress: false, pollsInPhase: 0))
        #expect(first >= 0.45 && first <= 0.55)
        let queued = (0..<8).map { delay(.init(jobID: 1, polls: $0 + 1, inProgress: false, pollsInPhase: $0)) }
        #expect(queued.last! > queued.first!)
        #expect(queued.allSatisfy { $0 <= 15 * 1.1 })
        let far = delay(.init(jobID: 1, polls: 3, inProgress: false, pollsInPhase: 2, queuePosition: 20, expectedRunTime: .seconds(60)))
        #expect(far >= 15 * 0.9)
        // Running for 1 s of an expected 5 s: next look a little after the expected end.
        let aim = delay(.init(jobID: 1, polls: 2, inProgress: true, pollsInPhase: 1, runningFor: .seconds(1), expectedRunTime: .seconds(5)))
        #expect(aim >= 4.0 * 0.9 && aim <= 4.1 * 1.1 + 0.1)
        // Overdue: look often, but not in a busy loop.
        let overdue = delay(.init(jobID: 1, polls: 5, inProgress: true, pollsInPhase: 4, runningFor: .seconds(6), expectedRunTime: .seconds(5)))
        #expect(overdue >= 0.1 && overdue <= 0.6)
        // Jobs known to take 200 ms are first looked at after about 200 ms, never sooner than the minimum.
        let quick = delay(.init(jobID: 1, polls: 0, inProgress: false, pollsInPhase: 0, expectedRunTime: .milliseconds(200)))
        #expect(quick >= 0.2 * 0.9 && quick <= 0.204 * 1.1)
        let instant = delay(.init(jobID: 1, polls: 0, inProgress: false, pollsInPhase: 0, expectedRunTime: .zero))
        #expect(instant >= 0.1 && instant <= 0.11)
        let slow = delay(.init(jobID: 1, polls: 0, inProgress: false, pollsInPhase: 0, expectedRunTime: .seconds(90)))
        #expect(slow >= 0.45 && slow <= 0.55)
    }

    @Test("the run time estimate follows what fal reports")
    func estimator() async {
        let estimator = RunTimeEstimator(weight: 0.5)
        #expect(await estimator.expected == nil)
        await estimator.record(10)
        await estimator.record(20)
        #expect(await estimator.expected == .seconds(15))
        await estimator.record(.nan)
        #expect(await estimator.expected == .seconds(15))
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
