import Foundation
@testable import Runner
import Testing

/// The dispatcher's decisions, exactly, with no I/O: slots, claims handed over, re-drives, waking.
@Suite("The dispatcher's state machine")
struct DispatcherStateMachineTests {
    typealias Machine = DispatcherStateMachine
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func machine(_ mode: Machine.Mode = .continuous, unreachableLimit: Int = 8) -> Machine {
        var retry = RetryPolicy()
        retry.base = .seconds(2)
        return Machine(mode: mode, retry: retry, unreachableLimit: unreachableLimit)
    }

    func gate(allowed: Bool = true, opensAt: Date? = nil, limit: Int = 2, keyPaused: String? = nil, streak: Int = 0, recheck: Date? = nil) -> Machine.Gate {
        Machine.Gate(allowed: allowed, opensAt: opensAt, limit: limit, keyPaused: keyPaused, unreachableStreak: streak, localRecheckAt: recheck)
    }

    func job(_ id: Int64, slot: Bool = true) -> Machine.Job { Machine.Job(id: id, occupiesSlot: slot) }

    @Test("at start every job in flight is driven; a download takes no fal slot")
    func start() {
        var machine = machine()
        #expect(machine.started(resumable: [job(1), job(2, slot: false)]) == [.drive(1, after: .zero), .drive(2, after: .zero)])
        #expect(machine.atFal == 1)
        #expect(machine.woken(gate(limit: 2)) == [.claim(limit: 1)])
    }

    @Test("with every slot taken, or the gate shut, it takes no step until an event arrives; a freed slot is that event")
    func noStepWithoutAnEvent() {
        var machine = machine()
        _ = machine.started(resumable: [job(1), job(2)])
        // However often it wakes (a ring, a stray timer), nothing is claimed, read or scheduled.
        for _ in 0..<3 { #expect(machine.woken(gate(limit: 2)) == [.wait(until: nil)]) }
        // Due jobs in the past do not wake it either: a claim that came back while no slot is free waits for an event.
        #expect(machine.claimed([], nextDue: now.addingTimeInterval(-10), budgetFreesAt: nil, gate: gate(limit: 2)) == [.wait(until: nil)])
        // The gate shut by fal's Retry-After: wake when it opens, not before; shut by a refused key: only an event.
        #expect(machine.woken(gate(allowed: false, opensAt: now.addingTimeInterval(5))) == [.wait(until: now.addingTimeInterval(5))])
        #expect(machine.woken(gate(allowed: false, keyPaused: "401")) == [.wait(until: nil)])
        // A slot frees: now it claims, exactly one.
        machine.slotReleased(1)
        machine.slotReleased(1)
        #expect(machine.atFal == 1, "a slot is released once per drive, however many paths report it")
        #expect(machine.woken(gate(limit: 2)) == [.claim(limit: 1)])
    }

    @Test("a full house after a 429 wakes when the gate's limit grows back, to use the new slot; at the configured limit it waits for an event")
    func wakesWhenTheLimitGrows() {
        var machine = machine()
        _ = machine.started(resumable: [job(1)])
        let grows = now.addingTimeInterval(5)
        var lowered = gate(limit: 1)
        lowered.growsAt = grows
        #expect(machine.woken(lowered) == [.wait(until: grows)])
        #expect(machine.claimed([], nextDue: now.addingTimeInterval(60), budgetFreesAt: nil, gate: lowered) == [.wait(until: grows)])
        var grown = gate(limit: 2)
        grown.growsAt = now.addingTimeInterval(10)
        #expect(machine.woken(grown) == [.claim(limit: 1)])
        #expect(machine.woken(gate(limit: 1)) == [.wait(until: nil)])
    }

    @Test("with a free slot, the next due job and the next budget day set the wake-up; a local recheck too")
    func wakeUps() {
        var machine = machine()
        let due = now.addingTimeInterval(30)
        #expect(machine.claimed([], nextDue: due, budgetFreesAt: now.addingTimeInterval(60), gate: gate()) == [.wait(until: due)])
        #expect(machine.claimed([], nextDue: nil, budgetFreesAt: nil, gate: gate(recheck: now.addingTimeInterval(10))) == [.wait(until: now.addingTimeInterval(10))])
        #expect(machine.woken(gate(allowed: false, opensAt: due, recheck: now.addingTimeInterval(3))) == [.wait(until: now.addingTimeInterval(3))])
    }

    @Test("a job claimed again while its executor is still finishing is handed to that executor, never dropped or doubled")
    func reclaimHandshake() {
        var machine = machine()
        #expect(machine.claimed([job(7)], nextDue: nil, budgetFreesAt: nil, gate: gate()) == [.drive(7, after: .zero), .wait(until: nil)])
        // The executor put the job back in the queue; before it has left, the next claim takes it again.
        #expect(machine.claimed([job(7)], nextDue: nil, budgetFreesAt: nil, gate: gate(limit: 4)) == [.wait(until: nil)])
        #expect(machine.atFal == 2, "the old drive's slot and the new claim's")
        // Leaving, the executor gives its slot back and drives the job again with the claim's slot.
        #expect(machine.driveEnded(7, .left) == [.drive(7, after: .zero)])
        #expect(machine.atFal == 1)
        #expect(machine.driveEnded(7, .left) == [])
        #expect(machine.atFal == 0 && machine.executors.isEmpty)
    }

    @Test("a drive that ended on an unexpected error is driven again after the retry policy's backoff, capped at a minute, keeping its fal slot")
    func interruptedDrives() {
        var machine = machine()
        _ = machine.started(resumable: [job(3)])
        #expect(machine.driveEnded(3, .interrupted) == [.drive(3, after: .seconds(2))])
        #expect(machine.driveEnded(3, .interrupted) == [.drive(3, after: .seconds(4))])
        for _ in 0..<8 { _ = machine.driveEnded(3, .interrupted) }
        #expect(machine.driveEnded(3, .interrupted) == [.drive(3, after: .seconds(60))])
        // Its request may still be at fal: the slot stays taken, so no other job is submitted in its place.
        #expect(machine.atFal == 1)
        #expect(machine.woken(gate(limit: 1)) == [.wait(until: nil)])
        #expect(machine.driveEnded(3, .left) == [])
        #expect(machine.atFal == 0 && machine.executors.isEmpty)
        // One interrupted after fal finished it (downloading) held no slot, and takes none.
        _ = machine.started(resumable: [job(4, slot: false)])
        #expect(machine.driveEnded(4, .interrupted) == [.drive(4, after: .seconds(2))])
        #expect(machine.atFal == 0)
    }

    @Test("until done: finished when nothing is left; stopped early, with the reason, by a refused key or an unreachable fal")
    func untilDone() {
        var machine = machine(.untilDone, unreachableLimit: 3)
        #expect(machine.claimed([], nextDue: nil, budgetFreesAt: nil, gate: gate()) == [.checkDone])
        #expect(machine.doneChecked(unfinished: 0, nextDue: nil, gate: gate()) == [.finish(reason: nil)])
        #expect(machine.doneChecked(unfinished: 2, nextDue: nil, gate: gate(allowed: false, keyPaused: "refused")) == [.finish(reason: "submission is paused: refused")])
        #expect(machine.doneChecked(unfinished: 2, nextDue: nil, gate: gate(streak: 3)) == [.finish(reason: "fal cannot be reached (3 submits in a row failed to connect)", unreachable: true)])
        // Jobs not due yet: wait for the first; a local pause (a full disk) is waited out, never a reason to stop.
        let due = now.addingTimeInterval(20)
        #expect(machine.doneChecked(unfinished: 2, nextDue: due, gate: gate()) == [.wait(until: due)])
        #expect(machine.woken(gate(allowed: false, recheck: due)) == [.checkDone])
        #expect(machine.doneChecked(unfinished: 2, nextDue: nil, gate: gate(allowed: false, recheck: due)) == [.wait(until: due)])
        // With work in hand it is never done.
        _ = machine.started(resumable: [job(1)])
        #expect(machine.doneChecked(unfinished: 0, nextDue: nil, gate: gate()) == [.wait(until: nil)])
    }

    @Test("stopping: nothing is claimed, and a claim handed over meanwhile is left for the next start with its slot given back")
    func stopping() {
        var machine = machine()
        _ = machine.started(resumable: [job(1)])
        _ = machine.claimed([job(1)], nextDue: nil, budgetFreesAt: nil, gate: gate(limit: 4))
        machine.stop()
        #expect(machine.woken(gate(limit: 4)) == [])
        #expect(machine.driveEnded(1, .stopped) == [])
        #expect(machine.atFal == 0 && machine.executors.isEmpty)
    }

    @Test("an untilDone run gives up once fal has not answered for give_up_after, jobs in hand or not; a daemon never does")
    func givesUpOnFal() {
        var retry = RetryPolicy()
        retry.base = .seconds(2)
        var once = Machine(mode: .untilDone, retry: retry, unreachableLimit: 8, giveUpAfter: .seconds(1800))
        _ = once.started(resumable: [job(1), job(2)])
        let since = now.addingTimeInterval(-600)
        func outage(at time: Date) -> Machine.Gate {
            var silent = self.gate(limit: 2)
            silent.unreachableSince = since
            silent.now = time
            return silent
        }
        // Every slot taken and fal silent: it sleeps until the moment it would give up, and no longer.
        #expect(once.woken(outage(at: now)) == [.wait(until: since.addingTimeInterval(1800))])
        // At that moment it stops, with its two jobs still in hand: they are left for the next run.
        let reason = "fal has not answered for 1800 s (give_up_after); the jobs are left for the next run"
        #expect(once.woken(outage(at: since.addingTimeInterval(1800))) == [.finish(reason: reason, unreachable: true)])
        #expect(once.stopping)
        #expect(once.driveEnded(1, .stopped) == [] && once.driveEnded(2, .stopped) == [])
        // An answer from fal ends the outage: no deadline, no give-up.
        var answered = Machine(mode: .untilDone, retry: retry, unreachableLimit: 8, giveUpAfter: .seconds(1800))
        _ = answered.started(resumable: [job(1), job(2)])
        var reached = self.gate(limit: 2)
        reached.now = now.addingTimeInterval(7200)
        #expect(answered.woken(reached) == [.wait(until: nil)])
        // The daemon keeps trying however long fal is silent.
        var daemon = Machine(mode: .continuous, retry: retry, unreachableLimit: 8, giveUpAfter: .seconds(1800))
        _ = daemon.started(resumable: [job(1), job(2)])
        #expect(daemon.woken(outage(at: now.addingTimeInterval(7200))) == [.wait(until: nil)])
    }

    @Test("while the downloads are behind (twice their slots in hand past fal) nothing is claimed, free fal slots or not; a download ending is the event")
    func downloadsBehind() {
        var retry = RetryPolicy()
        retry.base = .seconds(2)
        let limit = Machine.pastFalLimit(downloads: 2)
        #expect(limit == 4)
        var machine = Machine(mode: .continuous, retry: retry, unreachableLimit: 8, pastFalLimit: limit)
        // Four jobs claimed and at fal, then finished there: each gives its fal slot back as it starts downloading.
        #expect(machine.claimed((1...4).map { job($0) }, nextDue: nil, budgetFreesAt: nil, gate: gate(limit: 8)).count == 5)
        #expect(machine.woken(gate(limit: 8)) == [.claim(limit: 4)])
        for id in Int64(1)...3 { machine.slotReleased(id) }
        #expect(machine.pastFal == 3 && machine.atFal == 1)
        #expect(machine.woken(gate(limit: 8)) == [.claim(limit: 7)], "three behind the downloads is still within the backlog")
        machine.slotReleased(4)
        // Four past fal: seven fal slots are free, yet however often it wakes it claims nothing, and a due job in the
        // past does not set a timer.
        for _ in 0..<3 { #expect(machine.woken(gate(limit: 8)) == [.wait(until: nil)]) }
        #expect(machine.claimed([], nextDue: now.addingTimeInterval(-5), budgetFreesAt: nil, gate: gate(limit: 8)) == [.wait(until: nil)])
        // A local recheck still wakes it (a full disk is what the downloads may be waiting for).
        #expect(machine.woken(gate(limit: 8, recheck: now.addingTimeInterval(3))) == [.wait(until: now.addingTimeInterval(3))])
        // A download ends: it claims again, as many as fal has room for.
        #expect(machine.driveEnded(2, .left) == [])
        #expect(machine.woken(gate(limit: 8)) == [.claim(limit: 8)])
        // A download that keeps failing on an error of its own (a file where its folder should be) is driven again
        // on its backoff, and does not count: a few broken jobs must not stop every other batch.
        #expect(machine.driveEnded(1, .interrupted) == [.drive(1, after: .seconds(2))])
        #expect(machine.driveEnded(3, .interrupted) == [.drive(3, after: .seconds(2))])
        #expect(machine.pastFal == 1)
        // Resumed downloads after a restart count too: a store full of them claims nothing new until they drain.
        var resumed = Machine(mode: .continuous, retry: retry, unreachableLimit: 8, pastFalLimit: limit)
        _ = resumed.started(resumable: (10...15).map { job($0, slot: false) })
        #expect(resumed.woken(gate(limit: 8)) == [.wait(until: nil)])
    }
}
