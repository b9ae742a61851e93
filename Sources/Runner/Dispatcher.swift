import Foundation
import JobStore
import Logging
import ServiceLifecycle
import Synchronization

/// Hands jobs to executors: resumes what was in flight, then claims queued jobs only while a fal slot is free.
///
/// One task group holds one child per job being worked on; the loop sleeps on the doorbell between events
/// (a job finished, a slot freed, new work, a retry falling due), so an idle dispatcher costs nothing.
/// On graceful shutdown it stops claiming and cancels the executors, which leave every job resumable.
public final class Dispatcher: Service, Sendable {
    /// `untilDone` returns once no unfinished job is left (`run --once`); `continuous` runs until shutdown (daemon).
    public enum Mode: Sendable { case untilDone, continuous }

    private struct Book {
        var atFal = 0
        var active: Set<Int64> = []
        /// Jobs claimed again while their executor was finishing (the job went back to queued a moment before),
        /// with whether the claim occupies a fal slot: that executor drives them again instead of leaving.
        var reclaimed: [Int64: Bool] = [:]
        var stopping = false
        var abortReason: String?
        /// When the store and output were last probed: at most once per `localRecheck`, however often woken.
        var lastProbe: ContinuousClock.Instant?
        /// Jobs at another origin when the run started: they stay unfinished, and this run never touches them.
        var foreignAtStart = 0
    }

    public let environment: RunnerEnvironment
    public let mode: Mode
    private let book = Mutex(Book())

    /// Test seam: runs when an executor found its job finished or back in the queue, just before it leaves.
    private let beforeLeaving: (@Sendable (Int64) async -> Void)?

    public convenience init(environment: RunnerEnvironment, mode: Mode) {
        self.init(environment: environment, mode: mode, beforeLeaving: nil)
    }

    init(environment: RunnerEnvironment, mode: Mode, beforeLeaving: (@Sendable (Int64) async -> Void)?) {
        self.environment = environment
        self.mode = mode
        self.beforeLeaving = beforeLeaving
    }

    /// Why an `untilDone` run stopped before finishing (a refused key, fal unreachable); nil when it finished.
    public var abortReason: String? { book.withLock { $0.abortReason } }

    /// Jobs being worked on right now.
    public var activeJobs: Set<Int64> { book.withLock { $0.active } }

    public func run() async throws {
        let store = environment.store
        let logger = environment.logger
        let recovered = try store.recoverInterrupted()
        if recovered.requeued + recovered.unknown > 0 {
            logger.notice("recovered after an interruption: \(recovered.requeued) requeued, \(recovered.unknown) submits to reconcile")
        }
        writeMissingManifests()
        reportForeignJobs()
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for job in (try? store.jobs(in: JobState.resumable)) ?? [] where !environment.isForeign(job) {
                    start(job, in: &group)
                }
                while true {
                    if book.withLock({ $0.stopping }) || Task.isCancelled { break }
                    var wake: Date?
                    do {
                        wake = try await checkLocal()
                        if let claimWake = try await fillSlots(in: &group) { wake = min(wake ?? claimWake, claimWake) }
                        if mode == .untilDone, try await isDone() { break }
                        if let due = try store.nextDueTime() { wake = min(wake ?? due, due) }
                    } catch let error as StoreError where error.isTransient {
                        await environment.pauseLocal(.store, error.description)
                        wake = Date() + environment.configuration.localRecheck
                    } catch {
                        logger.error("dispatcher cannot read the store: \(error); retrying in 5 s")
                        wake = Date().addingTimeInterval(5)
                    }
                    await environment.doorbell.wait(until: wake.map { ContinuousClock.now + .milliseconds(Int64(max(0, $0.timeIntervalSinceNow) * 1000) + 5) })
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            let active = self.activeJobs.count
            logger.notice("stopping: nothing new is claimed; \(active) job\(active == 1 ? "" : "s") in hand \(active == 1 ? "is" : "are") left where the next start picks \(active == 1 ? "it" : "them") up (a submit on its way gets \(JobExecutor.stopGrace.formattedSeconds) for its answer)")
            self.stop()
        }
    }

    /// Stops claiming and asks executors to stop; `run` returns once they have.
    public func stop() {
        book.withLock { $0.stopping = true }
        environment.doorbell.ring()
    }

    /// Claims as many due jobs as there are free fal slots; returns when to look again if the gate is shut.
    private func fillSlots(in group: inout DiscardingTaskGroup) async throws -> Date? {
        let (allowed, after) = await environment.gate.check()
        guard allowed else { return after }
        let limit = await environment.gate.limit
        let free = limit - book.withLock { $0.atFal }
        guard free > 0 else { return nil }
        let budget = environment.configuration.budget
        let limits = SpendLimits(perDay: budget.perDay?.micros, perBatch: budget.perBatch?.micros)
        let outcome = try environment.store.claimWithinBudget(limit: free, budget: limits, origin: environment.origin)
        for (job, reason) in outcome.held {
            environment.logger.notice("held: \(reason)", metadata: ["job": "\(environment.displayName(job))"])
        }
        for job in outcome.claimed {
            start(job, in: &group)
        }
        // Held jobs wait for a reload (SIGHUP), a finished job's released reservation, or the next UTC day.
        if limits.perDay != nil, outcome.claimed.count < free, try environment.store.hasHeldJob() {
            return JobStore.nextBudgetDay(after: Date())
        }
        return nil
    }

    /// Our own machine, before anything is claimed: room in the state folder above the floor, and, while a local
    /// pause is in force, a probe write to what failed (the store, the output tree) to lift it once writes work.
    /// Returns when to look again while anything is still wrong.
    private func checkLocal() async throws -> Date? {
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
                try environment.store.probeWrite()
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
        return book.withLock { book in
            if let last = book.lastProbe, now - last < interval { return false }
            book.lastProbe = now
            return true
        }
    }

    /// For `untilDone`: finished when nothing is active and nothing unfinished is left, or when going on is useless.
    /// A pause of our own machine is not a reason to stop: it clears by itself, and the run waits for it.
    private func isDone() async throws -> Bool {
        let active = book.withLock { $0.active.count }
        if active == 0 {
            // The plain count reads the state index only; the exact one (leaving out jobs at another origin) reads
            // rows, so it is asked only when the plain count says the end may be near.
            let unfinished = try environment.store.unfinishedCount()
            if unfinished == 0 { return true }
            if unfinished <= book.withLock({ $0.foreignAtStart }), try environment.store.unfinishedCount(origin: environment.origin) == 0 { return true }
        }
        let gate = environment.gate
        if let reason = await gate.keyPausedReason, active == 0 {
            book.withLock { $0.abortReason = "submission is paused: \(reason)" }
            return true
        }
        let unreachable = await gate.consecutiveUnreachable
        if unreachable >= environment.configuration.unreachableLimit, active == 0 {
            book.withLock { $0.abortReason = "fal cannot be reached (\(unreachable) submits in a row failed to connect to \(environment.client.endpoints))" }
            return true
        }
        return false
    }

    /// Runs a job's executor in the group; a job still at fal after an unexpected stop is driven again after a pause.
    ///
    /// A job put back in the queue can be claimed again before its executor has left (a retry due at once): the
    /// claim is then handed to that executor under the same lock it leaves by, so a claimed job always has one.
    private func start(_ job: JobRecord, in group: inout DiscardingTaskGroup) {
        let occupiesSlot = job.state != .downloading
        let isNew = book.withLock { book -> Bool in
            if occupiesSlot { book.atFal += 1 }
            if book.active.insert(job.id).inserted { return true }
            book.reclaimed[job.id] = occupiesSlot
            return false
        }
        guard isNew else { return }
        group.addTask { [self] in
            var occupies = occupiesSlot
            var pauses = 0
            var left = false
            while !Task.isCancelled {
                let release = slotRelease(occupied: occupies)
                await JobExecutor(environment: environment, releaseFalSlot: release).drive(job.id)
                release()
                // Driven again after a pause, a job does not take a slot again (it gave its own back above).
                occupies = false
                if let again = takeReclaim(job.id) {
                    occupies = again
                    pauses = 0
                    continue
                }
                if let current = try? environment.store.job(job.id), !environment.isForeign(current),
                    JobState.resumable.contains(current.state) || current.state == .uploading || current.state == .submitting,
                    !book.withLock({ $0.stopping })
                {
                    pauses += 1
                    try? await Task.sleep(for: .seconds(min(60, 2 * pauses)))
                    if let again = takeReclaim(job.id) { occupies = again }
                    continue
                }
                await beforeLeaving?(job.id)
                let again = book.withLock { book -> Bool? in
                    if let again = book.reclaimed.removeValue(forKey: job.id) { return again }
                    book.active.remove(job.id)
                    return nil
                }
                guard let again else {
                    left = true
                    break
                }
                occupies = again
                pauses = 0
            }
            if !left {
                // Stopping: a claim handed over gives its slot back too; the next start resumes the job.
                book.withLock { book in
                    if book.reclaimed.removeValue(forKey: job.id) == true { book.atFal -= 1 }
                    book.active.remove(job.id)
                }
            }
            environment.doorbell.ring()
        }
    }

    /// A claim handed to this job's executor while it was finishing, with whether it occupies a fal slot.
    private func takeReclaim(_ jobID: Int64) -> Bool? {
        book.withLock { $0.reclaimed.removeValue(forKey: jobID) }
    }

    /// Gives back a job's fal slot once, however many paths report that it left fal.
    private func slotRelease(occupied: Bool) -> @Sendable () -> Void {
        let released = Mutex(!occupied)
        return { [self] in
            let first = released.withLock { done -> Bool in
                defer { done = true }
                return !done
            }
            if first {
                book.withLock { $0.atFal -= 1 }
                environment.doorbell.ring()
            }
        }
    }

    /// A crash between a job's final state and its manifest leaves the manifest missing; write those now. One
    /// that cannot be written yet (a full disk) is left for the next start.
    private func writeMissingManifests() {
        let missing = ((try? environment.store.jobs(in: [.failed, .cancelled])) ?? []).filter { $0.manifestPath == nil }
        for job in missing {
            do {
                try environment.writeManifest(job.id)
            } catch {
                environment.logger.warning("cannot write the manifest of a finished job yet (\(error)); trying again at the next start", metadata: ["job": "\(job.id)"])
            }
        }
    }

    /// Jobs whose request went to another origin (an emulator that is gone, or fal when this run is pointed at
    /// an emulator) are left alone, and said so once with what to do.
    private func reportForeignJobs() {
        guard let foreign = try? environment.store.foreignJobs(origin: environment.origin), !foreign.isEmpty else { return }
        book.withLock { $0.foreignAtStart = foreign.values.reduce(0) { $0 + $1.count } }
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
