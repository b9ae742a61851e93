import FalEmulator
import Foundation
import KlingCore
import Testing
import TestSupport

/// The key goes to the configured fal origin only: never to a URL an answer names elsewhere, never to the port
/// of an emulator that is gone, whatever the store remembers.
@Suite("The key stays home", .serialized, .timeLimit(.minutes(5)))
struct KeyOriginTests {
    static let key = "origin-test-key-9f8e7d6c5b4a"

    @Test("answers that name request URLs on another origin are not followed: the jobs complete, and that listener receives nothing")
    func foreignAnswerURLs() async throws {
        let folder = try TemporaryDirectory("origin-answers")
        defer { folder.remove() }
        let trap = try ListenerTrap()
        defer { trap.close() }
        try SpecWriter.writeJobs(count: 3, in: folder.url.appendingPathComponent("jobs"), sharedImages: 1)
        let emulator = try await EmulatorProcess(["--run-seconds", "0.1", "--answer-base-url", trap.url])
        let run = try Processes.runOnce(
            emulator, state: folder.path + "/state", out: folder.path + "/out", jobs: folder.path + "/jobs",
            environment: Processes.environment(key: Self.key))
        let status = await run.waitForExit()
        #expect(status == 0, "\(run.stdout)\n\(run.stderr.suffix(2000))")
        #expect(run.stderr.contains("rebuilt on"), "the mismatch is logged")
        #expect(trap.connectionCount == 0 && trap.received.isEmpty, "the trap received: \(trap.received.prefix(300))")
        #expect(!run.stderr.contains(Self.key) && !run.stdout.contains(Self.key))
        try Processes.expectOutputs(folder.path + "/out", count: 3)
        await emulator.stop()
    }

    @Test("requests sent to an emulator that is gone: a listener on its old port never gets the key; the run finishes its own jobs and says how to proceed; abandon + retry --resubmit resubmits at the new origin with fresh uploads")
    func staleOrigin() async throws {
        let folder = try TemporaryDirectory("origin-stale")
        defer { folder.remove() }
        let state = folder.path + "/state"
        let out = folder.path + "/out"
        try SpecWriter.writeJobs(count: 3, in: folder.url.appendingPathComponent("jobs-a"), sharedImages: 1, prefix: "a")
        try SpecWriter.writeJobs(count: 2, in: folder.url.appendingPathComponent("jobs-b"), sharedImages: 1, prefix: "b")
        let environment = Processes.environment(key: Self.key)

        // Three requests at emulator A; the runner is killed and A goes away for good.
        let old = try await EmulatorProcess(["--hold"])
        let first = try Processes.runOnce(old, state: state, out: out, jobs: folder.path + "/jobs-a", environment: environment)
        try await old.waitForCounters { $0.requestsCreated == 3 }
        first.signal(SIGKILL)
        await first.waitForExit()
        let oldOrigin = "http://127.0.0.1:\(old.url.port!)"
        await old.stop()
        let trap = try ListenerTrap(port: old.url.port!)
        defer { trap.close() }

        // A run against emulator B: its own jobs complete; A's are left alone, with advice.
        let emulator = try await EmulatorProcess(["--run-seconds", "0.1"])
        let second = try Processes.runOnce(emulator, state: state, out: out, jobs: folder.path + "/jobs-b", environment: environment)
        #expect(await second.waitForExit() == 1, "A's jobs stay unfinished: \(second.stdout)")
        #expect(second.stdout.contains("left untouched: 3 jobs whose request went to \(oldOrigin)"), "\(second.stdout)")
        #expect(second.stderr.contains("store abandon \(oldOrigin)"))
        var counters = try await emulator.counters()
        #expect(counters.requestsCreated == 2)
        // Two images of their own, and the shared one: uploaded through A before, uploaded again through B, not reused.
        #expect(counters.uploadInitiations == 3, "uploads at B: \(counters.uploadInitiations)")

        // Abandon them; retry needs --resubmit for a paid result that is out of reach, and says what it costs.
        let abandon = try await Processes.command(["store", "abandon", oldOrigin, "--state-dir", state], environment: environment)
        #expect(abandon.status == 0 && abandon.out.contains("abandoned a-0/a-0"), "\(abandon)")
        let list = try await Processes.command(["list", "--state", "failed", "--state-dir", state], environment: environment)
        #expect(list.out.contains("RETRY") && list.out.components(separatedBy: "resubmit").count > 3, "\(list.out)")
        let show = try await Processes.command(["show", "a-0/a-0", "--state-dir", state], environment: environment)
        #expect(show.out.contains("retry:      submit again with --resubmit") && show.out.contains("sent to:    \(oldOrigin)"), "\(show.out)")
        let refused = try await Processes.command(["retry", "--failed", "--state-dir", state], environment: environment)
        #expect(refused.status == 1 && refused.err.contains("--resubmit") && refused.err.contains("costs $"), "\(refused)")
        let retried = try await Processes.command(["retry", "--failed", "--resubmit", "--state-dir", state], environment: environment)
        #expect(retried.status == 0 && retried.out.contains("3 new submissions, estimated $"), "\(retried)")

        let third = try Processes.runOnce(emulator, state: state, out: out, jobs: folder.path + "/jobs-b", environment: environment)
        #expect(await third.waitForExit() == 0, "\(third.stdout)\n\(third.stderr.suffix(2000))")
        counters = try await emulator.counters()
        #expect(counters.requestsCreated == 5 && counters.duplicateSubmissions == 0)
        #expect(counters.uploadInitiations == 6, "A's three own images are uploaded through B once each: \(counters.uploadInitiations)")
        #expect(trap.connectionCount == 0 && trap.received.isEmpty, "the old port received: \(trap.received.prefix(300))")
        try Processes.expectOutputs(out, count: 5)
        await emulator.stop()
    }
}
