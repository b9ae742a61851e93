import Foundation

/// The dispatcher's decisions, as a value: fal slots, executors, claims handed over, re-drives after errors, and
/// when to wake. Events go in, actions come out; no clock, store or network inside, so every decision is tested
/// exactly (DispatcherStateMachineTests). The `Dispatcher` service performs the actions and reports what happened.
///
/// Shaped after Hummingbird's `HTTP2ServerConnectionManager.StateMachine`.
struct DispatcherStateMachine: Sendable {
    typealias Mode = Dispatcher.Mode

    /// A job handed to an executor, and whether it takes one of fal's concurrency slots.
    struct Job: Sendable, Equatable {
        var id: Int64
        var occupiesSlot: Bool
    }

    /// What the gate says when the loop wakes.
    struct Gate: Sendable, Equatable {
        /// Whether a submission may go now.
        var allowed: Bool
        /// When it may again, if only fal's Retry-After holds it.
        var opensAt: Date?
        /// Requests at fal at once, now.
        var limit: Int
        /// When `limit` grows back after a 429 (nil at the configured limit): a full house waits for it too.
        var growsAt: Date? = nil
        /// Why fal refused the key, if it did: the one pause that needs an operator.
        var keyPaused: String?
        /// Submits in a row that could not reach fal.
        var unreachableStreak: Int
        /// When our own machine's pauses (disk, store) are checked again, while one is in force.
        var localRecheckAt: Date?
        /// Since when no call has reached fal (`FalContact`); nil while calls get through.
        var unreachableSince: Date?
        /// The clock, read when the loop woke.
        var now = Date.distantPast
    }

    /// Something for the service to do.
    enum Action: Sendable, Equatable {
        /// Run (or run again) an executor for the job, after `delay`.
        case drive(Int64, after: Duration)
        /// Claim up to `limit` due jobs and report them with `claimed`.
        case claim(limit: Int)
        /// Count the unfinished jobs and report them with `doneChecked` (`untilDone` only).
        case checkDone
        /// Sleep until an event arrives, or `until` when given.
        case wait(until: Date?)
        /// The run is over; `reason` when it stopped before finishing, `unreachable` when because fal did not answer.
        case finish(reason: String?, unreachable: Bool = false)
    }

    /// One executor's bookkeeping.
    struct Executor: Sendable, Equatable {
        /// Whether its current drive still holds a fal slot.
        var holdsSlot: Bool
        /// A claim handed to it while it was finishing: drive again, with whether that claim took a slot.
        var reclaimed: Bool?
        /// Drives in a row that ended on an unexpected error (for the backoff).
        var failures = 0
    }

    let mode: Mode
    let retry: RetryPolicy
    /// Submits in a row that cannot reach fal before `untilDone` gives up.
    let unreachableLimit: Int
    /// How long fal may go unanswering before `untilDone` gives up with jobs in hand; zero: never.
    let giveUpAfter: Duration
    /// Jobs in hand past fal (downloading, or waiting to) at which nothing new is claimed: a video fal finished faster
    /// than we can download it must not pile up behind the downloads, paid for, holding memory, its URL ageing.
    let pastFalLimit: Int
    private(set) var atFal = 0
    private(set) var executors: [Int64: Executor] = [:]
    private(set) var stopping = false

    init(mode: Mode, retry: RetryPolicy, unreachableLimit: Int, giveUpAfter: Duration = .zero, pastFalLimit: Int = .max) {
        self.mode = mode
        self.retry = retry
        self.unreachableLimit = unreachableLimit
        self.giveUpAfter = giveUpAfter
        self.pastFalLimit = max(1, pastFalLimit)
    }

    /// The backlog for `downloads` parallel downloads: as many again waiting, so no download slot idles.
    static func pastFalLimit(downloads: Int) -> Int { 2 * max(1, downloads) }

    /// Jobs in hand that hold no fal slot: downloading, or waiting for a download slot. One waiting to be driven
    /// again after an error is left out: a few broken jobs must not stop every other batch.
    var pastFal: Int { executors.values.reduce(0) { $0 + ($1.holdsSlot || $1.failures > 0 ? 0 : 1) } }

    /// Whether the downloads are behind: no claim until one of them ends.
    private var backlogged: Bool { pastFal >= pastFalLimit }

    /// When an `untilDone` run gives up on fal, while fal is not answering.
    func giveUpAt(_ gate: Gate) -> Date? {
        guard mode == .untilDone, giveUpAfter > .zero, let since = gate.unreachableSince else { return nil }
        return since.addingTimeInterval(giveUpAfter.seconds)
    }

    /// The next time to look again for our own reasons: a local recheck, or the moment to give up on fal.
    private func recheckAt(_ gate: Gate) -> Date? {
        Self.earliest(gate.localRecheckAt, giveUpAt(gate))
    }

    /// At start: drive every job that was in flight.
    mutating func started(resumable: [Job]) -> [Action] {
        resumable.compactMap { hand($0) }
    }

    /// The loop woke (an event, or its timer): decide whether to claim. With every slot taken, the gate shut or the
    /// downloads behind, it only waits: for a slot to free, the gate to open, a download to end, or the next local
    /// recheck; never on a due time.
    mutating func woken(_ gate: Gate) -> [Action] {
        guard !stopping else { return [] }
        if let giveUpAt = giveUpAt(gate), gate.now >= giveUpAt {
            // Jobs in hand are left where the next run picks them up, as on SIGTERM.
            stopping = true
            return [.finish(reason: "fal has not answered for \(giveUpAfter.formattedSeconds) (give_up_after); the jobs are left for the next run", unreachable: true)]
        }
        guard gate.allowed else {
            if mode == .untilDone && executors.isEmpty { return [.checkDone] }
            return [.wait(until: Self.earliest(gate.opensAt, recheckAt(gate)))]
        }
        let free = gate.limit - atFal
        guard free > 0 else { return [.wait(until: Self.earliest(recheckAt(gate), gate.growsAt))] }
        // A download ending is the event that lets it claim again.
        guard !backlogged else { return [.wait(until: recheckAt(gate))] }
        return [.claim(limit: free)]
    }

    /// What a claim brought: drive each new job (a job still with its executor is handed to it), then wait for the
    /// next due job, the next budget day, or a local recheck; an untilDone run with nothing in hand checks whether
    /// it is done.
    mutating func claimed(_ jobs: [Job], nextDue: Date?, budgetFreesAt: Date?, gate: Gate) -> [Action] {
        var actions = jobs.compactMap { hand($0) }
        if mode == .untilDone && executors.isEmpty { return actions + [.checkDone] }
        // A due time only matters while there is a slot to use it in, and the downloads keep up.
        let full = gate.limit - atFal <= 0
        let due = full || backlogged ? nil : nextDue
        actions.append(.wait(until: Self.earliest(due, budgetFreesAt, recheckAt(gate), full ? gate.growsAt : nil)))
        return actions
    }

    /// For `untilDone`: what the count of unfinished jobs means, given why submission may be stuck.
    mutating func doneChecked(unfinished: Int, nextDue: Date?, gate: Gate) -> [Action] {
        guard executors.isEmpty else { return [.wait(until: recheckAt(gate))] }
        if unfinished == 0 { return [.finish(reason: nil)] }
        if let reason = gate.keyPaused { return [.finish(reason: "submission is paused: \(reason)")] }
        if gate.unreachableStreak >= unreachableLimit {
            return [.finish(reason: "fal cannot be reached (\(gate.unreachableStreak) submits in a row failed to connect)", unreachable: true)]
        }
        return [.wait(until: Self.earliest(nextDue, gate.opensAt, recheckAt(gate)))]
    }

    /// An executor gave its fal slot back (its job is downloading, or left fal). Idempotent per drive.
    mutating func slotReleased(_ id: Int64) {
        guard executors[id]?.holdsSlot == true else { return }
        executors[id]?.holdsSlot = false
        atFal -= 1
    }

    /// An executor's drive ended: drive again a claim handed over meanwhile; after an unexpected error, drive
    /// again after the retry policy's backoff, keeping the fal slot it held (its request may still be at fal, or
    /// its submit still to come); otherwise it leaves and gives its slot back.
    mutating func driveEnded(_ id: Int64, _ ending: JobExecutor.Ending) -> [Action] {
        if ending != .interrupted || stopping { slotReleased(id) }
        guard var executor = executors[id] else { return [] }
        if stopping {
            // A claim handed over now is left for the next start, and gives its slot back.
            if executor.reclaimed == true { atFal -= 1 }
            executors[id] = nil
            return []
        }
        if let occupies = executor.reclaimed {
            slotReleased(id)
            executor = executors[id] ?? executor
            executor.reclaimed = nil
            executor.failures = 0
            executor.holdsSlot = occupies
            executors[id] = executor
            return [.drive(id, after: .zero)]
        }
        if ending == .interrupted && !stopping {
            executor.failures += 1
            executors[id] = executor
            return [.drive(id, after: retry.backoff(step: executor.failures, cap: .seconds(60)))]
        }
        executors[id] = nil
        return []
    }

    /// Stop claiming; executors are stopped by the service, and each reports `driveEnded`.
    mutating func stop() {
        stopping = true
    }

    /// Hands a job to a new executor (an action), or to the one still holding it (no action: it drives again).
    private mutating func hand(_ job: Job) -> Action? {
        if job.occupiesSlot { atFal += 1 }
        if executors[job.id] != nil {
            executors[job.id]?.reclaimed = job.occupiesSlot
            return nil
        }
        executors[job.id] = Executor(holdsSlot: job.occupiesSlot)
        return .drive(job.id, after: .zero)
    }

    private static func earliest(_ dates: Date?...) -> Date? {
        dates.compactMap { $0 }.min()
    }
}
