import FalEmulator
import Foundation
import GRDB
import KlingCore
import Testing
import TestSupport

/// A store deleted, emptied or swapped under a running daemon is noticed at once, saved where it can be, and
/// never silently replaced by an empty one that has forgotten the requests already paid for.
@Suite("A lost store", .serialized, .timeLimit(.minutes(5)))
struct StoreLossTests {
    @Test("the database (or its whole state folder) deleted under a running daemon: it stops (exit 4) and saves a copy; a restart refuses with how to restore; restored, the 4 jobs finish with exactly 4 submissions",
          arguments: ["database files", "state folder"])
    func deletedUnderDaemon(what: String) async throws {
        let folder = try TemporaryDirectory("store-deleted")
        defer { folder.remove() }
        let state = folder.path + "/state"
        let emulator = try await EmulatorProcess(["--hold", "--run-seconds", "0.1"])
        let daemon = try Processes.daemon(emulator, folder: folder)
        await daemon.waitForStderr("watching ")
        try Processes.drop(4, into: folder)
        try await emulator.waitForCounters { $0.requestsCreated == 4 }
        await daemon.waitForStderr("submitted (attempt", count: 4)
        if what == "state folder" {
            // As `rm -rf` does it: the daemon may be renaming its status file into the folder at that moment, and a
            // file that vanishes mid-way (ENOENT) is no reason to stop deleting.
            for _ in 0..<100 where FileManager.default.fileExists(atPath: state) { try? FileManager.default.removeItem(atPath: state) }
            #expect(!FileManager.default.fileExists(atPath: state))
        } else {
            for suffix in ["", "-wal", "-shm"] { try FileManager.default.removeItem(atPath: state + "/kling-batch.sqlite" + suffix) }
        }

        #expect(await daemon.waitForExit() == 4, "\(daemon.stderr.suffix(2000))")
        #expect(daemon.stderr.contains("was deleted or moved away while running"), "\(daemon.stderr.suffix(2000))")
        let copies = try FileManager.default.contentsOfDirectory(atPath: state).filter { $0.hasPrefix("kling-batch.sqlite.rescued-") }
        #expect(copies.count == 1 && daemon.stderr.contains("saved in"), "\(copies)")

        // Nothing pretends the store is new and empty.
        let restarted = try Processes.daemon(emulator, folder: folder)
        #expect(await restarted.waitForExit() == 4)
        #expect(restarted.stderr.contains("is gone") && restarted.stderr.contains(copies.first ?? "?"), "\(restarted.stderr)")
        let status = try await Processes.command(["status", "--state-dir", state])
        #expect(status.status == 4 && !status.out.contains("no jobs"), "\(status)")

        // Put back, everything continues where it was: the same four requests, nothing paid twice.
        #expect(rename(state + "/" + copies[0], state + "/kling-batch.sqlite") == 0)
        let resumed = try Processes.daemon(emulator, folder: folder)
        await resumed.waitForStderr("watching ")
        try await emulator.releaseRequests()
        await resumed.waitForStderr("completed:", count: 4)
        resumed.signal(SIGTERM)
        #expect(await resumed.waitForExit() == 0)
        let counters = try await emulator.counters()
        #expect(counters.requestsCreated == 4 && counters.submitCalls == 4 && counters.duplicateSubmissions == 0)
        try Processes.expectOutputs(folder.path + "/out", count: 4)
        await emulator.stop()
    }

    @Test("the WAL file deleted under a running daemon: it writes the log's commits into the database and stops (exit 4); the restart goes on with exactly 3 submissions")
    func walDeleted() async throws {
        let folder = try TemporaryDirectory("store-wal")
        defer { folder.remove() }
        let state = folder.path + "/state"
        let emulator = try await EmulatorProcess(["--hold", "--run-seconds", "0.1"])
        let daemon = try Processes.daemon(emulator, folder: folder)
        await daemon.waitForStderr("watching ")
        try Processes.drop(3, into: folder)
        await daemon.waitForStderr("submitted (attempt", count: 3)
        try FileManager.default.removeItem(atPath: state + "/kling-batch.sqlite-wal")
        #expect(await daemon.waitForExit() == 4, "\(daemon.stderr.suffix(2000))")
        #expect(daemon.stderr.contains("lost its kling-batch.sqlite-wal file"), "\(daemon.stderr.suffix(2000))")
        #expect(daemon.stderr.contains("the commits of the lost write-ahead log are saved"))

        let resumed = try Processes.daemon(emulator, folder: folder)
        await resumed.waitForStderr("watching ")
        try await emulator.releaseRequests()
        await resumed.waitForStderr("completed:", count: 3)
        resumed.signal(SIGTERM)
        #expect(await resumed.waitForExit() == 0)
        let counters = try await emulator.counters()
        #expect(counters.requestsCreated == 3 && counters.duplicateSubmissions == 0, "\(counters.requestsCreated) requests for 3 jobs")
        try Processes.expectOutputs(folder.path + "/out", count: 3)
        await emulator.stop()
    }

    @Test("the database cut to 0 bytes under a running daemon: it stops (exit 4); a restart refuses the empty file instead of starting a new store")
    func emptiedUnderDaemon() async throws {
        let folder = try TemporaryDirectory("store-emptied")
        defer { folder.remove() }
        let state = folder.path + "/state"
        let emulator = try await EmulatorProcess(["--hold"])
        let daemon = try Processes.daemon(emulator, folder: folder)
        await daemon.waitForStderr("watching ")
        try Processes.drop(2, into: folder)
        await daemon.waitForStderr("submitted (attempt", count: 2)
        #expect(truncate(state + "/kling-batch.sqlite", 0) == 0)
        #expect(await daemon.waitForExit() == 4)
        #expect(daemon.stderr.contains("was emptied (cut to 0 bytes) while running"), "\(daemon.stderr.suffix(2000))")
        let restarted = try Processes.daemon(emulator, folder: folder)
        #expect(await restarted.waitForExit() == 4)
        #expect(restarted.stderr.contains("is an empty (0-byte) file"), "\(restarted.stderr)")
        #expect(try FileManager.default.attributesOfItem(atPath: state + "/kling-batch.sqlite")[.size] as? Int == 0, "the empty file was not initialised")
        await emulator.stop()
    }

    @Test("another store put in its place is refused; store reset starts an empty one on purpose, keeping the old files")
    func replacedAndReset() async throws {
        let folder = try TemporaryDirectory("store-replaced")
        defer { folder.remove() }
        let emulator = try await EmulatorProcess(["--run-seconds", "0.05"])
        try SpecWriter.writeJobs(count: 1, in: folder.url.appendingPathComponent("jobs"), sharedImages: 0)
        for state in ["state", "other"] {
            let run = try Processes.runOnce(emulator, state: folder.path + "/" + state, out: folder.path + "/out-" + state, jobs: folder.path + "/jobs")
            #expect(await run.waitForExit() == 0)
        }
        try FileManager.default.removeItem(atPath: folder.path + "/state/kling-batch.sqlite")
        try FileManager.default.copyItem(atPath: folder.path + "/other/kling-batch.sqlite", toPath: folder.path + "/state/kling-batch.sqlite")
        let refused = try Processes.runOnce(emulator, state: folder.path + "/state", out: folder.path + "/out-state", jobs: folder.path + "/jobs")
        #expect(await refused.waitForExit() == 4)
        #expect(refused.stderr.contains("not store") && refused.stderr.contains("store reset"), "\(refused.stderr)")

        let noYes = try await Processes.command(["store", "reset", "--state-dir", folder.path + "/state"])
        #expect(noYes.status != 0 && noYes.err.contains("--yes"))
        let reset = try await Processes.command(["store", "reset", "--yes", "--state-dir", folder.path + "/state"])
        #expect(reset.status == 0 && reset.out.contains("moved aside"), "\(reset)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path + "/state").contains { $0.hasPrefix("kling-batch.sqlite.reset-") })
        let fresh = try Processes.runOnce(emulator, state: folder.path + "/state", out: folder.path + "/out-state", jobs: folder.path + "/jobs")
        #expect(await fresh.waitForExit() == 0, "\(fresh.stderr.suffix(1000))")
        await emulator.stop()
    }

    @Test("store check: a healthy store passes; one that breaks an invariant is reported with exit 1")
    func storeCheck() async throws {
        let folder = try TemporaryDirectory("store-check")
        defer { folder.remove() }
        let emulator = try await EmulatorProcess(["--run-seconds", "0.05"])
        try SpecWriter.writeJobs(count: 2, in: folder.url.appendingPathComponent("jobs"), sharedImages: 1)
        let run = try Processes.runOnce(emulator, state: folder.path + "/state", out: folder.path + "/out", jobs: folder.path + "/jobs")
        #expect(await run.waitForExit() == 0)
        let healthy = try await Processes.command(["store", "check", "--state-dir", folder.path + "/state"])
        #expect(healthy.status == 0 && healthy.out.contains("ok: the store passes"), "\(healthy)")
        let database = try DatabaseQueue(path: folder.path + "/state/kling-batch.sqlite")
        try await database.write { try $0.execute(sql: "UPDATE job SET video_sha256 = NULL WHERE name = 'job-1'") }
        let broken = try await Processes.command(["store", "check", "--state-dir", folder.path + "/state"])
        #expect(broken.status == 1 && broken.out.contains("problem: job 2 (job-1): is completed but records no video"), "\(broken)")
        await emulator.stop()
    }
}
