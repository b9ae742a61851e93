import FalEmulator
import Foundation
import Testing
import TestSupport

/// Nothing dropped into the jobs folder can make the daemon read, write or log outside it.
@Suite("No escapes from the drop folder", .serialized, .timeLimit(.minutes(5)))
struct EscapeTests {
    static let secret = "root:SECRET-HASH-7f3a91:19000:0:99999:7:::"

    @Test("a spec that links outside the folder is refused unread (nothing of it in errors.txt or the log); a link inside the folder is followed; a newline in a file name cannot forge a log line")
    func links() async throws {
        let folder = try TemporaryDirectory("escape-links")
        defer { folder.remove() }
        let jobs = folder.path + "/jobs"
        try FileManager.default.createDirectory(atPath: jobs + "/library", withIntermediateDirectories: true)
        try "prompt: \"\(Self.secret)\"\nnot_a_key: \(Self.secret)\n".write(toFile: folder.path + "/shadow.yaml", atomically: true, encoding: .utf8)
        try "prompt: a quiet harbour at dawn\nduration: 5\n".write(toFile: jobs + "/library/harbour.yaml", atomically: true, encoding: .utf8)
        let emulator = try await EmulatorProcess(["--run-seconds", "0.05"])
        let daemon = try Processes.daemon(emulator, folder: folder)
        await daemon.waitForStderr("watching ")

        try FileManager.default.createSymbolicLink(atPath: jobs + "/leak.yaml", withDestinationPath: folder.path + "/shadow.yaml")
        try FileManager.default.createSymbolicLink(atPath: jobs + "/dots.yaml", withDestinationPath: "../shadow.yaml")
        try FileManager.default.createSymbolicLink(atPath: jobs + "/harbour-link.yaml", withDestinationPath: "library/harbour.yaml")
        try "prompt: forged\nduration: 5\n".write(toFile: folder.path + "/evil", atomically: true, encoding: .utf8)
        let forged = "evil\n2030-01-01T00:00:00.000Z critical forged line.yaml"
        try FileManager.default.moveItem(atPath: folder.path + "/evil", toPath: jobs + "/" + forged)
        daemon.signal(SIGUSR1)

        await daemon.waitForStderr("rejected leak.yaml")
        await daemon.waitForStderr("rejected dots.yaml")
        await daemon.waitForStderr("completed:", count: 2)
        daemon.signal(SIGTERM)
        #expect(await daemon.waitForExit() == 0)

        for name in ["leak.yaml", "dots.yaml"] {
            let errors = try String(contentsOfFile: jobs + "/rejected/\(name).errors.txt", encoding: .utf8)
            #expect(errors.contains("symbolic link") && !errors.contains("SECRET"), "\(errors)")
            var info = stat()
            #expect(lstat(jobs + "/rejected/" + name, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK, "the link itself is set aside")
        }
        #expect(!daemon.stderr.contains("SECRET"), "the target's content reached the log")
        #expect(daemon.stderr.contains("accepted harbour-link.yaml"))
        #expect(!daemon.stderr.split(separator: "\n").contains { $0.hasPrefix("2030-01-01") }, "a file name started a log line of its own")
        #expect(daemon.stderr.contains("evil\\n2030-01-01"), "the newline is shown escaped")
        #expect(try await emulator.counters().requestsCreated == 2)
        await emulator.stop()
    }

    @Test("accepted/ or rejected/ as a symlink stops the daemon (exit 4) before anything is moved through it")
    func archiveLink() async throws {
        let folder = try TemporaryDirectory("escape-archive")
        defer { folder.remove() }
        let jobs = folder.path + "/jobs"
        try FileManager.default.createDirectory(atPath: jobs, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: folder.path + "/elsewhere", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: jobs + "/accepted", withDestinationPath: folder.path + "/elsewhere")
        try "prompt: a lighthouse\n".write(toFile: jobs + "/one.yaml", atomically: true, encoding: .utf8)
        let emulator = try await EmulatorProcess()
        let daemon = try Processes.daemon(emulator, folder: folder)
        #expect(await daemon.waitForExit() == 4)
        #expect(daemon.stderr.contains("accepted is a symbolic link"), "\(daemon.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path + "/elsewhere").isEmpty)
        #expect(FileManager.default.fileExists(atPath: jobs + "/one.yaml"))
        #expect(try await emulator.counters().submitCalls == 0)
        await emulator.stop()
    }

    @Test("run --once on a folder refuses a link that leads out of it, without reading it")
    func runOnceLinks() async throws {
        let folder = try TemporaryDirectory("escape-run")
        defer { folder.remove() }
        try SpecWriter.writeJobs(count: 1, in: folder.url.appendingPathComponent("jobs"), sharedImages: 0)
        try "prompt: \"\(Self.secret)\"\n".write(toFile: folder.path + "/shadow.yaml", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: folder.path + "/jobs/leak.yaml", withDestinationPath: folder.path + "/shadow.yaml")
        let emulator = try await EmulatorProcess(["--run-seconds", "0.05"])
        let run = try Processes.runOnce(emulator, state: folder.path + "/state", out: folder.path + "/out", jobs: folder.path + "/jobs")
        #expect(await run.waitForExit() == 2, "a rejected spec file: exit 2")
        #expect(run.stdout.contains("rejected \(folder.path)/jobs/leak.yaml"), "\(run.stdout)")
        #expect(!run.stdout.contains("SECRET") && !run.stderr.contains("SECRET"))
        let validate = try await Processes.command(["validate", folder.path + "/jobs"])
        #expect(validate.status == 1 && validate.out.contains("symbolic link") && !validate.out.contains("SECRET"), "\(validate)")
        await emulator.stop()
    }
}
