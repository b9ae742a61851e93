import AsyncHTTPClient
import FalEmulator
import Foundation
import KlingCore
import NIOCore
import Testing
import TestSupport

/// The review page over HTTP: what it serves, what it refuses, and that nothing from a spec or from fal can run as
/// script in it. (The browser tests are in `ReviewBrowserTests`.)
@Suite("Review page", .serialized, .timeLimit(.minutes(5)))
struct ReviewPageTests {
    static let hostile = #"<script>alert("owned")</script> & 'quotes'"#

    /// A store with three jobs run to their end (one refused by fal's content check), served by `kling-batch serve`.
    struct Served: Sendable {
        let folder: TemporaryDirectory
        let serve: ChildProcess
        let base: String
        let loginURL: String
    }

    static func withServed(_ body: @Sendable (Served) async throws -> Void) async throws {
        let folder = try TemporaryDirectory("review")
        defer { folder.remove() }
        try ReviewFixtures.writeSpec(in: folder.path + "/jobs", prompt: hostile)
        let emulator = try await EmulatorProcess(["--run-seconds", "0.05", "--fault", "job-rejected=1#1"])
        // One at a time, so the first submit (the one fal refuses) is the first job's.
        let run = try Processes.runOnce(emulator, state: folder.path + "/state", out: folder.path + "/out", jobs: folder.path + "/jobs/review.yaml",
                                        extra: ["--concurrency", "1"], environment: Processes.environment(Processes.posters))
        #expect(await run.waitForExit() == 1, "one job is refused by fal: \(run.stderr.suffix(1500))")
        let serve = try ChildProcess("kling-batch", [
            "serve", "--fal-url", emulator.url.absoluteString, "--state-dir", folder.path + "/state", "--http", "127.0.0.1:0",
        ], environment: Processes.environment())
        let line = try await serve.waitForLine(startingWith: "review page: ")
        let loginURL = String(line.dropFirst("review page: ".count))
        let url = try #require(URL(string: loginURL))
        let base = "http://\(url.host ?? "127.0.0.1"):\(url.port ?? 0)"
        try await body(Served(folder: folder, serve: serve, base: base, loginURL: loginURL))
        serve.signal(SIGTERM)
        #expect(await serve.waitForExit() == 0)
        await emulator.stop()
    }

    static func get(_ url: String, headers: [String: String] = [:]) async throws -> (status: Int, headers: [String: String], body: String) {
        var request = HTTPClientRequest(url: url)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await client.execute(request, timeout: .seconds(30))
        let body = String(buffer: try await response.body.collect(upTo: 64 << 20))
        var fields: [String: String] = [:]
        for header in response.headers { fields[header.name.lowercased()] = header.value }
        return (Int(response.status.code), fields, body)
    }

    static func post(_ url: String, cookie: String? = nil) async throws -> Int {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        if let cookie { request.headers.add(name: "Cookie", value: cookie) }
        return Int(try await client.execute(request, timeout: .seconds(30)).status.code)
    }

    /// A client that shows redirects instead of following them (the login answers 303 with its cookie).
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    @Test("pages escape what specs and fal wrote, forbid inline script, never show the key, and serve videos with ranges")
    func pages() async throws {
        try await Self.withServed { served in
            let front = try await Self.get(served.base + "/")
            #expect(front.status == 200 && front.body.contains("review"))
            #expect(front.headers["content-security-policy"]?.contains("script-src 'self'") == true)
            let batch = try await Self.get(served.base + "/batches/1")
            #expect(batch.body.components(separatedBy: "<article class=\"card").count - 1 == 3, "every job has a card")
            #expect(batch.body.contains("card state-failed\" id=\"job-1\""), "the refused job shows as failed, with its reason")
            let job = try await Self.get(served.base + "/jobs/1")
            #expect(job.body.contains(HTMLText.escaped(Self.hostile)), "the prompt is shown as text")
            #expect(job.body.contains("&lt;b&gt;acme&lt;/b&gt;"), "meta values are escaped")
            for page in [front.body, batch.body, job.body] {
                #expect(!page.contains("<script>"), "no inline script at all")
                #expect(!page.contains("end-to-end-test-key"), "the key never appears")
            }
            let whole = try await Self.get(served.base + "/files/video/2")
            #expect(whole.status == 200 && whole.headers["content-type"] == "video/mp4")
            let part = try await Self.get(served.base + "/files/video/2", headers: ["Range": "bytes=0-99"])
            #expect(part.status == 206 && part.headers["content-range"]?.hasPrefix("bytes 0-99/") == true && part.headers["content-length"] == "100")
            if PosterTests.requireFFmpeg() {
                #expect(batch.body.contains("poster=\"/files/poster/2\""), "a finished video shows its poster frame")
                let poster = try await Self.get(served.base + "/files/poster/2")
                #expect(poster.status == 200 && poster.headers["content-type"] == "image/jpeg")
            }
            let filtered = try await Self.get(served.base + "/batches/1?state=failed")
            #expect(filtered.body.components(separatedBy: "<article class=\"card").count - 1 == 1)
            let searched = try await Self.get(served.base + "/batches/1?q=acme")
            #expect(searched.body.components(separatedBy: "<article class=\"card").count - 1 == 1, "search finds meta values")
        }
    }

    @Test("files only from the output root and known inputs: .., absolute paths, symlinks out of the root and changed inputs get 404")
    func files() async throws {
        try await Self.withServed { served in
            for path in ["/files/../../etc/passwd", "/files/video/..%2f..%2fetc%2fpasswd", "/files//etc/passwd", "/files/video/999", "/files/input/1/7", "/files/other/1"] {
                #expect(try await Self.get(served.base + path).status == 404, "\(path)")
            }
            #expect(try await Self.get(served.base + "/files/input/1/0").status == 200, "a known input")
            let video = try #require(Processes.files(in: served.folder.path + "/out", suffix: ".mp4").first)
            let path = served.folder.path + "/out/" + video
            let id = try await Self.jobID(of: (video as NSString).lastPathComponent, served)
            try FileManager.default.removeItem(atPath: path)
            try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "/etc/hostname")
            #expect(try await Self.get(served.base + "/files/video/\(id)").status == 404, "a symlink out of the root")
            let poster = (path as NSString).deletingPathExtension + ".jpg"
            try? FileManager.default.removeItem(atPath: poster)
            try FileManager.default.createSymbolicLink(atPath: poster, withDestinationPath: "/etc/hostname")
            #expect(try await Self.get(served.base + "/files/poster/\(id)").status == 404, "a poster symlinked out of the root")
            try Data("not the image any more".utf8).write(to: URL(fileURLWithPath: served.folder.path + "/jobs/refs/a.png"))
            #expect(try await Self.get(served.base + "/files/input/1/0").status == 404, "an input whose bytes changed")
        }
    }

    @Test("actions need the token: without it 403 and nothing changes; /login sets an HttpOnly SameSite=Strict cookie that lets a retry through")
    func token() async throws {
        try await Self.withServed { served in
            let failed = try await Self.get(served.base + "/batches/1?state=failed")
            let id = try #require(failed.body.firstMatch(of: /data-job="(\d+)"/).map { String($0.1) })
            #expect(try await Self.post(served.base + "/jobs/\(id)/retry") == 403)
            #expect(try await Self.post(served.base + "/jobs/\(id)/retry", cookie: "kling_batch_token=wrong") == 403)
            #expect(try await Self.get(served.base + "/jobs/\(id)").body.contains("<span class=\"state\">failed</span>"), "nothing changed")
            #expect(try await Self.get(served.base + "/login?token=wrong").status == 403)
            let login = try await Self.get(served.loginURL)
            #expect(login.status == 303)
            let cookie = try #require(login.headers["set-cookie"])
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"))
            #expect(try await Self.post(served.base + "/jobs/\(id)/retry", cookie: String(cookie.prefix { $0 != ";" })) == 303)
            #expect(try await Self.get(served.base + "/jobs/\(id)").body.contains("<span class=\"state\">queued</span>"))
            let token = try String(contentsOfFile: served.folder.path + "/state/web-token", encoding: .utf8)
            let mode = try FileManager.default.attributesOfItem(atPath: served.folder.path + "/state/web-token")[.posixPermissions] as? Int
            #expect(token.count >= 64 && mode == 0o600)
        }
    }

    @Test("a contact sheet beside the batch: every job with relative links only, opened with no server")
    func contactSheet() async throws {
        try await Self.withServed { served in
            let sheets = Processes.files(in: served.folder.path + "/out", suffix: "index.html")
            let sheet = try String(contentsOfFile: served.folder.path + "/out/" + #require(sheets.first), encoding: .utf8)
            #expect(sheets.count == 1)
            #expect(sheet.components(separatedBy: "<figure>").count - 1 == 3)
            let links = sheet.matches(of: /(?:src|href|poster)="([^"]*)"/).map { String($0.1) }
            // Two videos, and their posters when ffmpeg made them.
            #expect(links.count == (PosterTests.requireFFmpeg() ? 4 : 2) && links.allSatisfy { $0.hasPrefix("./") && !$0.contains("..") }, "relative links only: \(links)")
            #expect(sheet.contains(HTMLText.escaped(Self.hostile)) && !sheet.contains("<script>"))
        }
    }

    static func jobID(of videoName: String, _ served: Served) async throws -> Int64 {
        let name = (videoName as NSString).deletingPathExtension
        let page = try await get(served.base + "/batches/1?q=" + name)
        guard let id = page.body.firstMatch(of: /data-job="(\d+)"/).flatMap({ Int64($0.1) }) else { throw HarnessError("no job \(name)") }
        return id
    }
}

/// HTML escaping as the pages do it, to look for escaped text.
enum HTMLText {
    static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
    }
}

/// The review tests' spec: three jobs from one image, the first with a hostile prompt and meta.
enum ReviewFixtures {
    static func writeSpec(in jobs: String, prompt: String) throws {
        try FileManager.default.createDirectory(atPath: jobs + "/refs", withIntermediateDirectories: true)
        try SpecWriter.png(salt: "review").write(to: URL(fileURLWithPath: jobs + "/refs/a.png"))
        let quoted = prompt.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        try """
            defaults: {image_urls: [refs/a.png], duration: 3}
            jobs:
              - {name: hostile, prompt: "@Image1 \(quoted)", meta: {client: "<b>acme</b>"}}
              - {name: calm-one, prompt: "@Image1 a calm sea"}
              - {name: calm-two, prompt: "@Image1 a calm lake"}
            """.write(toFile: jobs + "/review.yaml", atomically: true, encoding: .utf8)
    }
}
