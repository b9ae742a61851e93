import Foundation
import KlingCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Log-safe text, origins and local write errors")
struct LocalVocabularyTests {
    @Test("control characters become visible escapes, so a file name cannot start a forged log line or repaint a terminal")
    func logSafe() {
        #expect(LogSafe.escape("plain text, émigré 日本") == "plain text, émigré 日本")
        #expect(LogSafe.escape("evil\n2030-01-01 critical forged") == "evil\\n2030-01-01 critical forged")
        #expect(LogSafe.escape("a\rb\tc") == "a\\rb\\tc")
        #expect(LogSafe.escape("bell\u{7}esc\u{1b}[31m") == "bell\\u{7}esc\\u{1b}[31m")
        #expect(LogSafe.escape("c1\u{85}line\u{2028}sep") == "c1\\u{85}line\\u{2028}sep")
        #expect(LogSafe.escape("back\\slash\n") == "back\\\\slash\\n", "a backslash is doubled so an escape cannot be faked")
    }

    @Test("an origin is scheme, host and a non-default port, lower-cased")
    func origins() {
        #expect(FalOrigin.of("https://queue.fal.run/fal-ai/x/requests/1/status") == "https://queue.fal.run")
        #expect(FalOrigin.of("HTTPS://Queue.FAL.run:443/x") == "https://queue.fal.run")
        #expect(FalOrigin.of("http://127.0.0.1:4545/a") == "http://127.0.0.1:4545")
        #expect(FalOrigin.of("http://127.0.0.1:4546/a") != FalOrigin.of("http://127.0.0.1:4545/a"))
        #expect(FalOrigin.of("http://[::1]:80/x") == "http://[::1]")
        #expect(FalOrigin.of("not a url") == nil)
    }

    @Test("a full disk, a quota, a read-only remount, a lost permission and an I/O error wait; anything else is the job's own")
    func waitable() {
        for code in [ENOSPC, EDQUOT, EROFS, EACCES, EPERM, EIO] {
            #expect(LocalWriteError(what: "video", path: "/x", code: code).isWaitable)
        }
        for code in [ENOTDIR, ENAMETOOLONG, EINVAL] {
            #expect(!LocalWriteError(what: "video", path: "/x", code: code).isWaitable)
        }
        #expect(LocalWriteError(what: "video", path: "/out/a.mp4", code: ENOSPC).description == "cannot write the video /out/a.mp4: No space left on device")
    }

    @Test("folders are made with the errno of what failed")
    func makeFolders() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("folders-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try LocalWriteError.makeFolders(root + "/a/b/c")
        try LocalWriteError.makeFolders(root + "/a/b/c")
        _ = FileManager.default.createFile(atPath: root + "/file", contents: Data())
        #expect(throws: LocalWriteError(what: "folder", path: root + "/file", code: ENOTDIR)) { try LocalWriteError.makeFolders(root + "/file/d") }
    }
}
