import Foundation
import JobStore
import Logging

/// The dispatcher's I/O: what its state machine asks it to look at or do.
extension Dispatcher {
    /// The gate and our own machine, as the state machine reads them when it wakes.
    func gateView() async throws -> DispatcherStateMachine.Gate {
        let recheck = try await checkLocal()
        let gate = await environment.gate.snapshot()
        return DispatcherStateMachine.Gate(
            allowed: gate.allowed, opensAt: gate.opensAt, limit: gate.limit, growsAt: gate.growsAt, keyPaused: gate.keyPaused,
            unreachableStreak: gate.unreachableStreak, localRecheckAt: recheck, unreachableSince: environment.client.contact.unreachableSince,
            now: Date())
    }

    /// Claims up to `limit` due jobs and tells the state machine what came, with when to look again.
    func claim(limit: Int, gate: DispatcherStateMachine.Gate) async throws -> [DispatcherStateMachine.Action] {
        let store = environment.store
        let budget = environment.configuration.budget
        let outcome = try await store.claim(limit: limit, budget: budget, origin: environment.origin)
        for (job, reason) in outcome.held {
            let name = await environment.displayName(job)
            environment.logger.notice("held: \(reason)", metadata: ["job": "\(name)"])
        }
        // Held jobs wait for a reload (SIGHUP), a finished job's released reservation, or the next UTC day.
        var budgetFreesAt: Date?
        if budget.perDay != nil, outcome.claimed.count < limit, try await store.hasHeldJob() { budgetFreesAt = BudgetDay.next(after: Date()) }
        let jobs = outcome.claimed.map { DispatcherStateMachine.Job(id: $0.id, occupiesSlot: $0.state != .downloading) }
        let nextDue = try await store.nextDueTime()
        return machine.withLock { $0.claimed(jobs, nextDue: nextDue, budgetFreesAt: budgetFreesAt, gate: gate) }
    }

    /// For `untilDone`: the unfinished jobs this run can still do something about.
    func checkDone(gate: DispatcherStateMachine.Gate) async throws -> [DispatcherStateMachine.Action] {
        let store = environment.store
        // The plain count reads the state index only; the exact one (leaving out jobs at another origin) reads
        // rows, so it is asked only when the plain count says the end may be near.
        var unfinished = try await store.unfinishedCount(origin: nil)
        if unfinished > 0, unfinished <= foreignAtStart.withLock({ $0 }) {
            unfinished = try await store.unfinishedCount(origin: environment.origin)
        }
        let nextDue = try await store.nextDueTime()
        return machine.withLock { $0.doneChecked(unfinished: unfinished, nextDue: nextDue, gate: gate) }
    }

    /// Our own machine, before anything is claimed: room in the state folder above the floor, and, while a local
    /// pause is in force, a probe write to what failed (the store, the output tree) to lift it once writes work.
    /// Returns when to look again while anything is still wrong.
    func checkLocal() async throws -> Date? {
        let configuration = environment.configuration
        let gate = environment.gate
        // One look at the gate on the common path (nothing paused): this runs on every pass of the dispatcher.
        var causes = await gate.pauseCauses
        if configuration.minimumFreeStateBytes > 0, let free = DiskSpace.available(at: configuration.stateDirectory) {
            if free < configuration.minimumFreeStateBytes {
                await environment.pauseLocal(.stateSpace, "the state folder \(configuration.stateDirectory) has \(DiskSpace.describe(free)) free, "
                    + "below the floor of \(DiskSpace.describe(configuration.minimumFreeStateBytes)) (min_free_space)")
                causes.insert(.stateSpace)
            } else if causes.contains(.stateSpace) {
                await environment.clearLocal(.stateSpace)
                causes.remove(.stateSpace)
            }
        }
        guard causes.contains(where: \.isLocal) else { return nil }
        if probeDue(causes, every: configuration.localRecheck) {
            if causes.contains(.store) {
                try await environment.store.probeWrite()
                await environment.clearLocal(.store)
            }
            if causes.contains(.output), environment.outputWritableAgain() {
                await environment.clearLocal(.output)
            }
        }
        let local = await gate.pauseCauses.filter(\.isLocal)
        guard !local.isEmpty else { return nil }
        let reason = await gate.pausedReason ?? local.map(\.rawValue).joined(separator: ", ")
        environment.logger.debug("still paused: \(reason); checking again in \(configuration.localRecheck.formattedSeconds)")
        return Date() + configuration.localRecheck
    }

    /// Whether the store or output may be probed now: a pause that wakes the dispatcher (and every pause does) must
    /// not turn into a probe, clear and pause again in a loop.
    private func probeDue(_ causes: Set<SubmissionGate.PauseCause>, every interval: Duration) -> Bool {
        guard !causes.isDisjoint(with: [.store, .output]) else { return false }
        let now = ContinuousClock.now
        return lastProbe.withLock { last in
            if let last, now - last < interval { return false }
            last = now
            return true
        }
    }

    /// Jobs whose request went to another origin (an emulator that is gone, or fal when this run is pointed at
    /// an emulator) are left alone, and said so once with what to do.
    func reportForeignJobs() async {
        guard let foreign = try? await environment.store.foreignJobs(origin: environment.origin), !foreign.isEmpty else { return }
        foreignAtStart.withLock { $0 = foreign.values.reduce(0) { $0 + $1.count } }
        for (origin, ids) in foreign.sorted(by: { $0.key < $1.key }) {
            let one = ids.count == 1
            let which = one ? "1 job's request was" : "\(ids.count) jobs' requests were"
            let them = one ? "it" : "them"
            let advice = "To finish \(them), run against \(origin) again (--fal-url \(origin)); if that server is gone for good, "
                + "`kling-batch store abandon \(origin)` marks \(them) failed, to be retried with `kling-batch retry --resubmit`."
            environment.logger.warning(
                "\(which) sent to \(origin), not to \(environment.origin) as configured now; \(them) left untouched and no key is sent there. \(advice)")
        }
    }
}
