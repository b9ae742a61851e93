import Foundation
import KlingSpec
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

@Suite("Reading a spec file of a folder, once")
struct ReadInsideTests {
    @Test("a file or a link inside is read; a link out, a link to nothing and a FIFO are refused unread")
    func kinds() throws {
        let folder = try TemporaryDirectory("read-inside")
        defer { folder.remove() }
        let jobs = folder.path + "/jobs"
        try FileManager.default.createDirectory(atPath: jobs + "/library", withIntermediateDirectories: true)
        try "prompt: a\n".write(toFile: jobs + "/a.yaml", atomically: true, encoding: .utf8)
        try "prompt: b\n".write(toFile: jobs + "/library/b.yaml", atomically: true, encoding: .utf8)
        try "secret\n".write(toFile: folder.path + "/secret.yaml", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: jobs + "/b.yaml", withDestinationPath: "library/b.yaml")
        try FileManager.default.createSymbolicLink(atPath: jobs + "/out.yaml", withDestinationPath: "../secret.yaml")
        try FileManager.default.createSymbolicLink(atPath: jobs + "/none.yaml", withDestinationPath: "missing.yaml")
        #expect(mkfifo(jobs + "/pipe.yaml", 0o644) == 0)
        #expect(SpecFiles.readInside("a.yaml", in: jobs) == .contents(Array("prompt: a\n".utf8)))
        #expect(SpecFiles.readInside("b.yaml", in: jobs) == .contents(Array("prompt: b\n".utf8)))
        #expect(SpecFiles.readInside("out.yaml", in: jobs) == .refused(SpecFiles.linkRefusal))
        #expect(SpecFiles.readInside("none.yaml", in: jobs) == .refused(SpecFiles.linkRefusal))
        #expect(SpecFiles.readInside("pipe.yaml", in: jobs) == .refused(SpecFiles.linkRefusal))
        #expect(SpecFiles.readInside("gone.yaml", in: jobs) == .gone)
    }

    @Test("a name swapped between a file and a link to a secret, as fast as possible, never yields the secret")
    func swapRace() async throws {
        let folder = try TemporaryDirectory("read-race")
        defer { folder.remove() }
        let jobs = folder.path + "/jobs"
        try FileManager.default.createDirectory(atPath: jobs, withIntermediateDirectories: true)
        try "SECRET\n".write(toFile: folder.path + "/secret.yaml", atomically: true, encoding: .utf8)
        try "prompt: fine\n".write(toFile: jobs + "/spec.yaml", atomically: true, encoding: .utf8)
        let secret = folder.path + "/secret.yaml"
        let stop = ManagedAtomicFlag()
        let swapper = Thread {
            // Atomically replace the name by a link to the secret, then by a plain file again, over and over.
            while !stop.isSet {
                symlink(secret, jobs + "/.link")
                rename(jobs + "/.link", jobs + "/spec.yaml")
                let fd = open(jobs + "/.file", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                _ = write(fd, "prompt: fine\n", 13)
                close(fd)
                rename(jobs + "/.file", jobs + "/spec.yaml")
            }
        }
        swapper.start()
        var leaked = 0
        var read = 0
        for _ in 0..<5000 {
            if case .contents(let bytes) = SpecFiles.readInside("spec.yaml", in: jobs) {
                read += 1
                if bytes == Array("SECRET\n".utf8) { leaked += 1 }
            }
        }
        stop.set()
        #expect(leaked == 0, "the secret was read \(leaked) times")
        #expect(read > 0, "the regular file was never read: the race never let it through")
    }
}

/// A flag one thread sets and another reads.
final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
