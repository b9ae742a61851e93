import Foundation
import KlingCore
@testable import Runner
import Synchronization
import Testing

@Suite("Concurrency primitives")
struct PrimitiveTests {
    @Test("the semaphore never lets more than its permits through")
    func semaphoreBound() async throws {
        let semaphore = AsyncSemaphore(permits: 3)
        let counter = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<40 {
                group.addTask {
                    try await semaphore.withPermit {
                        await counter.enter()
                        await Task.yield()
                        await counter.leave()
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(await counter.maximum <= 3)
        #expect(await counter.total == 40)
    }

    @Test("a waiter cancelled while waiting leaves, and its permit is not lost")
    func semaphoreCancellation() async throws {
        let semaphore = AsyncSemaphore(permits: 1)
        try await semaphore.acquire()
        let waiter = Task { try await semaphore.acquire() }
        await Task.yield()
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        semaphore.release()
        try await semaphore.acquire()
        semaphore.release()
    }

    // The limit only catches a hang: with the whole suite running at once on two cores, this test's few steps can
    // wait over a minute for a thread (CI measured 109 s), so it is generous.
    @Test("the doorbell wakes its waiter, remembers an early ring once, honours a deadline and a cancel", .timeLimit(.minutes(5)))
    func doorbell() async {
        let bell = Doorbell()
        bell.ring()
        #expect(await bell.wait(), "rung before anyone waited: returns at once, as rung (else this test would time out)")

        // The ring was used up: the next wait lasts until its deadline, and says it was not rung.
        let start = ContinuousClock.now
        #expect(await bell.wait(until: start + .milliseconds(50)) == false)
        #expect(ContinuousClock.now - start >= .milliseconds(50))
        // A deadline already past ends the wait at once, and leaves nothing behind for the next one.
        #expect(await bell.wait(until: start) == false)

        // A waiter sleeps until a ring, however long, and wakes on one.
        let woke = Mutex(false)
        let waiter = Task {
            let rung = await bell.wait()
            woke.withLock { $0 = true }
            return rung
        }
        for _ in 0..<200 { await Task.yield() }
        #expect(!woke.withLock { $0 }, "nothing rang")
        bell.ring()
        #expect(await waiter.value)
        #expect(woke.withLock { $0 })

        // Cancelling the waiting task ends its wait, as not rung; a ring afterwards is kept for the next wait.
        let cancelled = Task { await bell.wait() }
        cancelled.cancel()
        #expect(await cancelled.value == false)
        bell.ring()
        #expect(await bell.wait(until: .now + .seconds(60)))
    }

    @Test("the webhook inbox wakes a waiting poller, keeps an early webhook for the poller to come, and ignores repeats")
    func webhookInbox() async {
        let inbox = WebhookInbox()
        let bell = inbox.bell(for: "req-a")
        let waiting = Task { await bell.wait() }
        for _ in 0..<100 { await Task.yield() }
        #expect(inbox.arrive("req-a") == .woke)
        #expect(await waiting.value)
        #expect(inbox.arrive("req-a") == .duplicate, "fal sent it again: nothing is rung")
        #expect(await bell.wait(until: .now + .milliseconds(20)) == false)
        inbox.leave("req-a")

        #expect(inbox.arrive("req-b") == .early)
        #expect(await inbox.bell(for: "req-b").wait(), "the poller that comes after its webhook looks at once")
        #expect(inbox.arrive("req-b") == .duplicate)

        for index in 0..<(WebhookInbox.remembered + 1) { _ = inbox.arrive("old-\(index)") }
        #expect(inbox.arrive("old-0") == .early, "the oldest ids are forgotten past \(WebhookInbox.remembered)")
        #expect(inbox.arrive("old-\(WebhookInbox.remembered)") == .duplicate, "recent ones are kept")
    }

    @Test("webhooks are relied on while listening, until a request a poll found ended has no webhook 30 s later; then not for 10 minutes")
    func webhookReliance() {
        let clock = Mutex(ContinuousClock.now)
        let inbox = WebhookInbox(now: { clock.withLock { $0 } })
        #expect(!inbox.isRelied, "nothing listens yet")
        inbox.startListening()
        #expect(inbox.isRelied)
        inbox.polledEnded("late")
        clock.withLock { $0 += .seconds(20) }
        #expect(inbox.arrive("late") == .early, "its webhook came 20 s after the poll: late, not lost")
        clock.withLock { $0 += .seconds(40) }
        #expect(inbox.isRelied)
        inbox.polledEnded("lost")
        clock.withLock { $0 += .seconds(29) }
        #expect(inbox.isRelied, "still within the grace")
        clock.withLock { $0 += .seconds(2) }
        #expect(!inbox.isRelied, "lost: the normal schedule is back")
        clock.withLock { $0 += .seconds(599) }
        #expect(!inbox.isRelied)
        clock.withLock { $0 += .seconds(2) }
        #expect(inbox.isRelied, "ten minutes on, webhooks are tried again")
    }

    @Test("webhook keys are fetched once and kept a day; a failed signature refetches at most once a minute")
    func webhookKeys() async throws {
        let clock = Mutex(Date(timeIntervalSince1970: 1_000_000))
        let fetches = Mutex(0)
        let keys = WebhookKeys(fetch: { fetches.withLock { $0 += 1 }; return [] }, now: { clock.withLock { $0 } })
        _ = try await keys.current()
        _ = try await keys.current()
        #expect(fetches.withLock { $0 } == 1)
        #expect(try await keys.refreshed() == nil, "fetched a moment ago")
        clock.withLock { $0 += 61 }
        #expect(try await keys.refreshed() != nil)
        #expect(fetches.withLock { $0 } == 2)
        clock.withLock { $0 += 24 * 3600 - 1 }
        _ = try await keys.current()
        #expect(fetches.withLock { $0 } == 2, "still within a day of the last fetch")
        clock.withLock { $0 += 2 }
        _ = try await keys.current()
        #expect(fetches.withLock { $0 } == 3, "older than a day: fetched again")
    }

    @Test("a failed key fetch is not tried again for a minute, and callers at the same moment share one fetch")
    func webhookKeysFailing() async throws {
        struct Down: Error {}
        let clock = Mutex(Date(timeIntervalSince1970: 1_000_000))
        let fetches = Mutex(0)
        let failing = WebhookKeys(fetch: { fetches.withLock { $0 += 1 }; throw Down() }, now: { clock.withLock { $0 } })
        for _ in 0..<5 { await #expect(throws: Down.self) { try await failing.current() } }
        #expect(fetches.withLock { $0 } == 1, "junk deliveries must not become a stream of fetches")
        clock.withLock { $0 += 61 }
        await #expect(throws: Down.self) { try await failing.current() }
        #expect(fetches.withLock { $0 } == 2)

        let slow = Doorbell()
        let shared = WebhookKeys(fetch: { fetches.withLock { $0 += 1 }; await slow.wait(); return [] }, now: { clock.withLock { $0 } })
        let callers = (0..<4).map { _ in Task { try await shared.current() } }
        while fetches.withLock({ $0 }) < 3 { await Task.yield() }
        for _ in 0..<100 { await Task.yield() }
        slow.ring()
        for caller in callers { _ = try await caller.value }
        #expect(fetches.withLock { $0 } == 3, "four callers, one fetch")
    }

    @Test("a log line clears the live progress line first and draws it again below")
    func liveLine() {
        var live = LiveLine()
        #expect(live.framing("a log line\n") == "a log line\n", "with no live line, a log line is written as it is")
        #expect(live.show("3/10 done") == "\r\u{1B}[K3/10 done")
        #expect(live.framing("submitted\n") == "\r\u{1B}[Ksubmitted\n3/10 done")
        #expect(live.show("4/10 done") == "\r\u{1B}[K4/10 done")
        #expect(live.clear() == "\r\u{1B}[K")
        #expect(live.clear() == "" && live.current == nil)
        #expect(live.framing("done\n") == "done\n")
    }

    @Test("the gate: Retry-After holds everyone, 429 lowers the limit, quiet raises it back")
    func gate() async {
        let gate = SubmissionGate(limit: 8, recoveryInterval: 30, doorbell: Doorbell())
        let now = Date()
        #expect(await gate.check(now: now).allowed)
        await gate.rateLimited(until: now.addingTimeInterval(3), atFal: 6, now: now)
        #expect(await gate.limit == 5)
        // More 429s inside the same back-off window answer submits sent before it: they do not lower it again.
        await gate.rateLimited(until: now.addingTimeInterval(3), atFal: 5, now: now.addingTimeInterval(0.5))
        #expect(await gate.limit == 5)
        let held = await gate.check(now: now.addingTimeInterval(1))
        #expect(!held.allowed && held.after == now.addingTimeInterval(3))
        #expect(await gate.check(now: now.addingTimeInterval(3.1)).allowed)
        // Quiet counts from the end of fal's back-off (3 s): one more slot after 30 s of it, then 2 more, capped.
        #expect(await gate.limit(at: now.addingTimeInterval(32)) == 5)
        #expect(await gate.growsAt(now.addingTimeInterval(32)) == now.addingTimeInterval(33))
        #expect(await gate.limit(at: now.addingTimeInterval(33)) == 6)
        #expect(await gate.limit(at: now.addingTimeInterval(63)) == 8)
        #expect(await gate.growsAt(now.addingTimeInterval(63)) == nil)
        await gate.pause("401 from fal")
        #expect(await gate.check(now: now.addingTimeInterval(100)) == (false, nil))
        await gate.resume()
        #expect(await gate.check(now: now.addingTimeInterval(100)).allowed)
        await gate.setConfiguredLimit(2)
        #expect(await gate.limit == 2)
    }

    @Test("after a 429 burst, any configured limit is back within 60 s of quiet, with no submit needed, and a new 429 starts over", arguments: [4, 16, 40, 1000])
    func recoveryWithinAMinute(configured: Int) async {
        let gate = SubmissionGate(limit: configured, doorbell: Doorbell())
        let start = Date(timeIntervalSinceReferenceDate: 0)
        // A burst: 429s on submits, each lowering it below what is at fal, until it is down to 1.
        var now = start
        for second in 0..<20 {
            now = start.addingTimeInterval(Double(second) * 2)
            await gate.rateLimited(until: now.addingTimeInterval(1), atFal: 2, now: now)
        }
        #expect(await gate.limit(at: now) == 1)
        let quietFrom = now.addingTimeInterval(1)
        var back: TimeInterval?
        var previous = 1
        for tenth in 0...600 {
            let at = quietFrom.addingTimeInterval(Double(tenth) / 10)
            let limit = await gate.limit(at: at)
            #expect(limit >= previous, "it never shrinks while quiet")
            previous = limit
            if limit == configured { back = at.timeIntervalSince(quietFrom); break }
        }
        #expect((back ?? .infinity) <= 60, "back to \(configured) after \(back ?? -1) s")
        // A 429 in the middle of the recovery lowers it from where it had got to, and the climb starts again.
        let gate2 = SubmissionGate(limit: configured, doorbell: Doorbell())
        await gate2.rateLimited(until: start.addingTimeInterval(1), atFal: 1, now: start)
        let midway = await gate2.limit(at: start.addingTimeInterval(11))
        await gate2.rateLimited(until: start.addingTimeInterval(12), atFal: midway, now: start.addingTimeInterval(11))
        #expect(await gate2.limit(at: start.addingTimeInterval(11.5)) == max(1, midway - 1))
        #expect(await gate2.growsAt(start.addingTimeInterval(11.5)) == start.addingTimeInterval(17))
        // A reload in mid-recovery (SIGHUP, a key resumed) keeps what the 429s taught, under the new limit.
        let reduced = await gate2.limit(at: start.addingTimeInterval(20))
        await gate2.setConfiguredLimit(configured * 2, now: start.addingTimeInterval(20))
        #expect(await gate2.limit(at: start.addingTimeInterval(20)) == (reduced < configured ? reduced : configured * 2), "recovered already: the new limit")
        await gate2.setConfiguredLimit(1, now: start.addingTimeInterval(21))
        #expect(await gate2.limit(at: start.addingTimeInterval(21)) == 1)
    }
}

actor Counter {
    var current = 0
    var maximum = 0
    var total = 0
    func enter() { current += 1; total += 1; maximum = max(maximum, current) }
    func leave() { current -= 1 }

    @Test("pause causes: each is set and cleared on its own; only the key needs an operator; a clear wakes every waiter at once", .timeLimit(.minutes(10)))
    func pauseCauses() async throws {
        let gate = SubmissionGate(limit: 4, doorbell: Doorbell())
        #expect(await gate.pause(.output, "the output disk is full"))
        #expect(await !gate.pause(.output, "still full"), "a second report of the same cause is not news")
        await gate.pause("the key was refused")
        #expect(await gate.check().allowed == false)
        #expect(await gate.pausedReason == "the key was refused; still full")
        #expect(await gate.keyPausedReason == "the key was refused")
        #expect(await gate.pauseCauses == [.key, .output])
        await gate.resume()
        #expect(await gate.pauseCauses == [.output], "a reload lifts the key pause only")

        // Three executors wait for the disk; one clear wakes them all: their recheck is an hour away, so their
        // returning at all is the proof (the time limit catches a waiter left behind).
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<3 { group.addTask { await gate.waitUntilClear(.output, atMost: .seconds(3600)) } }
            await Task.yield()
            #expect(await gate.clear(.output))
            try await group.waitForAll()
        }
        #expect(await gate.check().allowed)
        #expect(await !gate.clear(.output), "clearing what is not paused says so")
        // Waiting on a cause that is not in force returns at once.
        await gate.waitUntilClear(.store, atMost: .seconds(60))
    }

    @Test("a broadcast wakes every waiter, and one that registers after a fire it already missed returns at once")
    func broadcast() async {
        let broadcast = Broadcast()
        let seen = broadcast.generation
        broadcast.fire()
        await broadcast.wait(after: seen, atMost: .seconds(60))
        let now = broadcast.generation
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 { group.addTask { await broadcast.wait(after: now, atMost: .seconds(60)) } }
            await Task.yield()
            broadcast.fire()
        }
        #expect(broadcast.generation == now + 1)
    }

    @Test("sizes as people write them, and as they read them")
    func sizes() {
        #expect(DiskSpace.parseSize("64MB") == 64_000_000)
        #expect(DiskSpace.parseSize("1.5 GB") == 1_500_000_000)
        #expect(DiskSpace.parseSize("512k") == 512_000)
        #expect(DiskSpace.parseSize("2MiB") == 2_097_152)
        #expect(DiskSpace.parseSize("0") == 0)
        #expect(DiskSpace.parseSize("lots") == nil)
        #expect(DiskSpace.parseSize("-1MB") == nil)
        #expect(DiskSpace.describe(64_000_000) == "64 MB")
        #expect(DiskSpace.describe(1_500_000) == "1.5 MB")
        #expect(DiskSpace.available(at: "/") ?? 0 > 0)
    }
}
