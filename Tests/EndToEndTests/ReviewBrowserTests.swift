import FalEmulator
import Foundation
import KlingCore
import Testing
import TestSupport

/// The review page in a real browser (headless Chromium over WebDriver) against `daemon --http`: videos that play,
/// a card that changes as its job finishes without a reload, a cancel that works with the token and not without.
@Suite("Review page in a browser", .serialized, .timeLimit(.minutes(5)))
struct ReviewBrowserTests {
    /// What a prompt may hold; the page must show it as text.
    static let hostile = "<img src=x onerror=alert(1)> a lighthouse at dawn"
    /// Each card's state and its video's loading state, for a wait that gives up.
    static let cards = "Array.from(document.querySelectorAll('.card')).map(c => { const v = c.querySelector('video'); "
        + "return [c.id, c.dataset.state, v ? [v.readyState, v.networkState, v.error ? v.error.code : null, v.currentSrc] : null]; })"

    @Test("grid, live update, playable videos, cancel with the token, 403 without it")
    func browse() async throws {
        guard WebDriver.isInstalled else {
            Issue.record("chromium and chromium-driver are not installed: `scripts/setup --tests` installs them")
            return
        }
        let folder = try TemporaryDirectory("review-browser")
        defer { folder.remove() }
        try ReviewFixtures.writeSpec(in: folder.path + "/stage", prompt: Self.hostile)
        let emulator = try await EmulatorProcess(["--hold", "--run-seconds", "0.2"])
        let trap = try ListenerTrap()
        let port = trap.port
        trap.close()
        let daemon = try Processes.daemon(emulator, folder: folder, extra: ["--http", "127.0.0.1:\(port)"], environment: Processes.environment(Processes.posters))
        await daemon.waitForStderr("review page on ")
        try FileManager.default.createDirectory(atPath: folder.path + "/jobs", withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: folder.path + "/stage/refs", toPath: folder.path + "/jobs/refs")
        try FileManager.default.moveItem(atPath: folder.path + "/stage/review.yaml", toPath: folder.path + "/jobs/review.yaml")
        await daemon.waitForStderr("submitted (attempt", count: 3)
        let login = try await Processes.command(["serve", "--login-url", "--state-dir", folder.path + "/state", "--http", "127.0.0.1:\(port)"])
        #expect(login.status == 0, "\(login.err)")
        let base = "http://127.0.0.1:\(port)"

        let browser = try await WebDriver()
        do {
            try await steps(browser, base: base, login: login.out.trimmingCharacters(in: .whitespacesAndNewlines), emulator: emulator, folder: folder.path)
        } catch {
            Issue.record("\(error)\nthe daemon's log ends with:\n\(daemon.stderr.suffix(4000))")
        }
        await browser.quit()
        let counters = try await emulator.counters()
        #expect(counters.requestsCreated == 3 && counters.duplicateSubmissions == 0 && counters.cancelsApplied == 1, "\(counters)")
        daemon.signal(SIGTERM)
        #expect(await daemon.waitForExit() == 0, "\(daemon.stderr.suffix(2000))")
        await emulator.stop()
    }

    private func steps(_ browser: WebDriver, base: String, login: String, emulator: EmulatorProcess, folder: String) async throws {
        // Without the token a POST changes nothing.
        #expect(try await ReviewPageTests.post(base + "/jobs/1/cancel") == 403)
        try await browser.open(base + "/jobs/1")
        #expect(try await browser.run("return document.getElementById('cancel') === null") == .bool(true), "no buttons without the token")
        #expect(try await browser.run("return document.querySelector('.job .state').textContent") == .string("in_queue"))

        // With it, cancel works and the page says so.
        try await browser.open(login)
        try await browser.open(base + "/jobs/1")
        try await browser.run("document.getElementById('cancel').click()")
        let state = try await browser.wait(until: "document.querySelector('.job') && document.querySelector('.job').dataset.state === 'cancelled'",
                                           then: "document.querySelector('.job .state').textContent")
        #expect(state == .string("cancelled"))

        // The grid changes as the other two finish, with no reload, and their videos load.
        try await browser.open(base + "/batches/1")
        #expect(try await browser.run("return document.querySelectorAll('.card').length") == .int(3))
        try await browser.run("window.stillTheSamePage = true")
        #expect(try await emulator.releaseRequests() >= 2)
        let ready = try await browser.wait(
            until: "['job-2', 'job-3'].every(id => { const v = document.querySelector('#' + id + ' video'); return v && v.readyState >= 1; })",
            then: "[window.stillTheSamePage === true, document.querySelector('#job-2').dataset.state, document.querySelector('#job-2 video').readyState]",
            within: .seconds(120), explain: Self.cards)
        #expect(ready[0] == .bool(true), "updated without a reload")
        #expect(ready[1] == .string("completed"))
        #expect((ready[2]?.doubleValue ?? 0) >= 1, "the video's metadata loaded: \(ready)")
        #expect(try await browser.run("return document.querySelector('#job-1').dataset.state") == .string("cancelled"))
        try await browser.screenshot(to: folder + "/batch-grid.png")

        // A hostile prompt is text; files outside the output root are not served, even to a logged-in browser.
        try await browser.open(base + "/jobs/1")
        #expect(try await browser.run("return document.querySelectorAll('img[src=\"x\"]').length") == .int(0), "no element from the prompt")
        #expect(try await browser.run("return document.querySelector('.prompt').textContent").stringValue?.contains(Self.hostile) == true)
        #expect(try await probe(browser, ["/files/../../etc/passwd", "/files/%2e%2e/%2e%2e/etc/passwd", "/files/video/1"]) == [404, 404, 404])
        try await browser.screenshot(to: folder + "/job-page.png")

        // The contact sheet opens from file:// with no server, and its videos load.
        let sheet = try #require(Processes.files(in: folder + "/out", suffix: "index.html").first)
        let posters = PosterTests.requireFFmpeg()
        if posters {
            // Posters follow the videos on a task of their own; the sheet is written again once both are made.
            try await Self.waitFor("the contact sheet with both posters") {
                (try? String(contentsOfFile: folder + "/out/" + sheet, encoding: .utf8))?.components(separatedBy: " poster=").count == 3
            }
        }
        try await browser.open("file://" + folder + "/out/" + sheet)
        let loaded = try await browser.wait(
            until: "document.querySelectorAll('video').length === 2 && Array.from(document.querySelectorAll('video')).every(v => v.readyState >= 1)",
            then: "document.querySelectorAll('figure').length")
        #expect(loaded == .int(3))
        if posters {
            try await browser.run("""
                window.posterWidths = []; document.querySelectorAll('video').forEach(v => {
                  const image = new Image();
                  // The wait re-checks on DOM changes: each load (or failure, as width 0) marks the page.
                  const seen = width => { window.posterWidths.push(width); document.body.dataset.posters = String(window.posterWidths.length); };
                  image.onload = () => seen(image.naturalWidth); image.onerror = () => seen(0); image.src = v.poster; });
                """)
            let widths = try await browser.wait(until: "window.posterWidths.length === 2", then: "window.posterWidths")
            #expect(widths.arrayValue?.allSatisfy { ($0.doubleValue ?? 0) > 0 } == true, "both posters decode as images: \(widths)")
        }
        try await browser.screenshot(to: folder + "/contact-sheet.png")

        // A video replaced by a symlink out of the output root is not served any more.
        let video = try #require(Processes.files(in: folder + "/out", suffix: "calm-one.mp4").first)
        try FileManager.default.removeItem(atPath: folder + "/out/" + video)
        try FileManager.default.createSymbolicLink(atPath: folder + "/out/" + video, withDestinationPath: "/etc/hostname")
        try await browser.open(base + "/jobs/2")
        #expect(try await probe(browser, ["/files/video/2"]) == [404])
    }

    /// The statuses the page's own `fetch` gets for `paths` (the browser sends its cookie with them).
    private func probe(_ browser: WebDriver, _ paths: [String]) async throws -> [Int64] {
        try await browser.run("""
            Promise.all(arguments[0].map(p => fetch(p, { credentials: 'same-origin' }).then(r => r.status)))
              .then(s => document.body.setAttribute('data-probed', s.join(',')));
            """, [.array(paths.map { .string($0) })])
        let text = try await browser.wait(until: "document.body.hasAttribute('data-probed')", then: "document.body.getAttribute('data-probed')")
        try await browser.run("document.body.removeAttribute('data-probed')")
        return (text.stringValue ?? "").split(separator: ",").compactMap { Int64($0) }
    }

    /// Waits, checking every 50 ms for at most 60 s, until `condition` holds (a file another process writes).
    static func waitFor(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw HarnessError("timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

}
