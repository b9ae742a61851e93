import Foundation
import KlingCore

extension EmulatorState {
    /// Replays every queue event up to `now`: requests become eligible, take a runner slot, and finish.
    func advance(to now: Date) {
        guard now >= simulatedUntil else { return }
        var time = simulatedUntil == .distantPast ? now : simulatedUntil
        while true {
            startWaitingRequests(at: time)
            var next: Date?
            for id in running { if let end = runEnd(id) { next = min(next ?? end, end) } }
            if hasFreeSlot, let head = waitingHeadRequest, !head.held {
                next = min(next ?? head.eligibleAt, head.eligibleAt)
            }
            guard let next, next <= now else { break }
            time = max(time, next)
            finishRunningRequests(at: time)
        }
        simulatedUntil = now
    }

    /// When the queue next changes by itself after `now` (a run ends, or the head of the queue may start), at most a
    /// minute on; for waking the webhook courier exactly when a request can have ended.
    func nextQueueEvent(after now: Date) -> Date {
        var next = now.addingTimeInterval(60)
        for id in running { if let end = runEnd(id) { next = min(next, end) } }
        if hasFreeSlot, let head = waitingHeadRequest, !head.held, head.eligibleAt > now { next = min(next, head.eligibleAt) }
        return next
    }

    /// When request `id` can next change by itself: its run's end while it runs, the queue's next event while it
    /// waits, now once it ended.
    func nextChange(of id: String, after now: Date) -> Date {
        advance(to: now)
        guard let request = requests[id], !request.isFinished else { return now }
        if request.phase == .running, let end = runEnd(id) { return end }
        return nextQueueEvent(after: now)
    }

    private var hasFreeSlot: Bool { configuration.runnerCapacity.map { running.count < $0 } ?? true }

    private var waitingHeadRequest: EmulatedRequest? {
        while waitingHead < waiting.count {
            if let request = requests[waiting[waitingHead]], request.phase == .queued { return request }
            waitingHead += 1
        }
        if waitingHead > 1024 {
            waiting.removeFirst(waitingHead)
            waitingHead = 0
        }
        return nil
    }

    private func runEnd(_ id: String) -> Date? {
        guard let request = requests[id], let started = request.startedAt else { return nil }
        return started.addingTimeInterval(request.runSeconds)
    }

    private func startWaitingRequests(at time: Date) {
        while hasFreeSlot, let head = waitingHeadRequest, !head.held, head.eligibleAt <= time {
            waitingHead += 1
            requests[head.id]?.phase = .running
            requests[head.id]?.startedAt = max(time, head.eligibleAt)
            running.append(head.id)
            tallies.maxRunningRequests = max(tallies.maxRunningRequests, running.count)
        }
    }

    private func finishRunningRequests(at time: Date) {
        running.removeAll { id in
            guard let end = runEnd(id), end <= time else { return false }
            finish(id, at: end)
            return true
        }
    }

    /// Ends a request (run finished or cancelled) and updates the tallies.
    func finish(_ id: String, at time: Date, cancelled: Bool = false) {
        guard var request = requests[id], !request.isFinished else { return }
        if cancelled { request.outcome = .cancelled }
        request.phase = .completed
        request.endedAt = time
        if request.startedAt == nil { request.startedAt = time }
        requests[id] = request
        activeByKey[request.key, default: 1] -= 1
        switch request.outcome {
        case .success: tallies.requestsSucceeded += 1
        case .cancelled: tallies.requestsCancelled += 1
        case .invalid: tallies.requestsFailed += 1; tallies.validationFailures += 1
        case .runnerFailure, .rejected: tallies.requestsFailed += 1
        }
    }

    var activeCount: Int { activeByKey.values.reduce(0, +) }

    /// The result of a submit that reached the queue.
    enum SubmitDecision {
        case created(id: String, queuePosition: Int)
        case overConcurrencyLimit(limit: Int)
        case invalid([JSONValue])
    }

    /// Accepts (or refuses) a submit. `fault` is the fault already drawn for this call, which may decide the outcome.
    func submit(
        endpoint: String, app: String, key: String, body: Data, input: JSONValue, fault: FaultKind?, webhook: String? = nil, now: Date
    )
        -> SubmitDecision
    {
        advance(to: now)
        if let limit = configuration.perKeyConcurrencyLimit, activeByKey[key, default: 0] >= limit {
            tallies.concurrencyRejections += 1
            return .overConcurrencyLimit(limit: limit)
        }
        let checker = ModelInputChecker(canFetch: { [self] in canFetch($0) })
        let issues = checker.issues(in: input)
        if !issues.isEmpty && configuration.validateInputAt == .submit {
            tallies.validationFailures += 1
            return .invalid(issues)
        }
        let outcome: EmulatedRequest.Outcome
        switch fault {
        case _ where !issues.isEmpty: outcome = .invalid(issues)
        case .jobFailure?: outcome = .runnerFailure(status: 500, errorType: "runner_server_error", detail: "The runner encountered an internal server error")
        case .jobRejected?: outcome = .rejected
        default: outcome = .success
        }
        let id = UUID().uuidString.lowercased()
        let requestedSeconds = EmulatedRequest.requestedSeconds(in: input)
        let hash = Self.sha256(input.canonicalData())
        let request = EmulatedRequest(
            id: id, endpoint: endpoint, app: app, key: key, input: input, bodyHash: hash, submittedAt: now,
            eligibleAt: now.addingTimeInterval(configuration.queueSeconds),
            runSeconds: issues.isEmpty ? configuration.runSeconds : 0,
            held: configuration.holdRequests, outcome: outcome,
            aspectRatio: input["aspect_ratio"]?.stringValue ?? "16:9",
            videoBytes: configuration.videoBytes ?? 0,
            videoSeconds: drawWrongDuration() ? EmulatedRequest.wrongSeconds(insteadOf: requestedSeconds) : requestedSeconds)
        requests[id] = request
        requests[id]?.webhookURL = webhook
        submissionOrder.append(id)
        waiting.append(id)
        tallies.requestsCreated += 1
        tallies.submissionsPerBody[hash, default: 0] += 1
        if tallies.submissionsPerBody[hash]! > 1 { tallies.duplicateSubmissions += 1 }
        activeByKey[key, default: 0] += 1
        tallies.maxActivePerKey = max(tallies.maxActivePerKey, activeByKey[key]!)
        tallies.maxActiveRequests = max(tallies.maxActiveRequests, activeCount)
        let position = waiting[waitingHead...].count - 1
        advance(to: now)
        if webhook != nil { awaitWebhook(id) }
        return .created(id: id, queuePosition: max(0, position))
    }

    /// Whether this submit's video is to be the wrong length. The seeded generator is drawn only when the knob is
    /// on, so fault sequences recorded without it replay unchanged.
    private func drawWrongDuration() -> Bool {
        guard configuration.wrongDurationProbability > 0 else { return false }
        if rng.unit() < configuration.wrongDurationProbability {
            tallies.faultsInjected["wrong-duration", default: 0] += 1
            return true
        }
        return false
    }

    /// A request of `app` as it stands now, counting the look as a status poll when `poll`.
    func lookUp(app: String, id: String, now: Date, poll: Bool = false) -> EmulatedRequest? {
        advance(to: now)
        guard let request = requests[id], request.app == app else { return nil }
        if poll {
            requests[id]?.statusPolls += 1
            tallies.statusPolls += 1
        }
        return requests[id]
    }

    /// How many requests wait ahead of `id`.
    func queuePosition(of id: String) -> Int {
        var position = 0
        for waitingID in waiting[waitingHead...] {
            if waitingID == id { return position }
            if requests[waitingID]?.phase == .queued { position += 1 }
        }
        return position
    }

    /// Cancels a request that has not finished; false when it already had.
    func cancel(app: String, id: String, now: Date) -> Bool? {
        tallies.cancelCalls += 1
        advance(to: now)
        guard let request = requests[id], request.app == app else { return nil }
        if request.isFinished { return false }
        running.removeAll { $0 == id }
        finish(id, at: now, cancelled: true)
        tallies.cancelsApplied += 1
        webhookBell.ring()
        return true
    }
}
