import FalEmulator
import Foundation
import Testing
import TestSupport

/// After a burst of 429s the runner climbs back to its configured concurrency on its own, and pays for nothing twice.
@Suite("Rate limit recovery end to end", .serialized, .timeLimit(.minutes(5)))
struct RateLimitEndToEndTests {
    @Test("the first 16 submits answered 429: the run still reaches 16 requests at fal at once, and every job is paid once")
    func burst() async throws {
        let folder = try TemporaryDirectory("rate-limit-e2e")
        defer { folder.remove() }
        try Processes.drop(20, into: folder)
        // Requests are held at fal, so none ends: 16 at once can only come from the limit growing back.
        let emulator = try await EmulatorProcess(["--hold", "--retry-after", "1", "--fault", "429=1@submit#16"])
        let run = try Processes.runOnce(emulator, state: folder.path + "/state", out: folder.path + "/out", jobs: folder.path + "/jobs",
                                        extra: ["--concurrency", "16"])
        let climbed = try await emulator.waitForCounters { $0.requestsCreated >= 16 }
        #expect(climbed.faults(.rateLimit) == 16 && climbed.maxActivePerKey == 16, "\(climbed)")
        _ = try await emulator.releaseRequests()
        _ = try await emulator.waitForCounters { $0.requestsCreated >= 20 }
        _ = try await emulator.releaseRequests()
        #expect(await run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        let counters = try await emulator.counters()
        #expect(counters.requestsCreated == 20 && counters.duplicateSubmissions == 0, "\(counters)")
        try Processes.expectOutputs(folder.path + "/out", count: 20)
        await emulator.stop()
    }
}
