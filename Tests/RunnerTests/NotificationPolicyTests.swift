import Foundation
import JobStore
import KlingCore
import Testing
import TestSupport

@testable import Runner

/// The pure parts of notifications and hooks: retry schedules, target parsing, signatures, messages.
@Suite("Notification and hook policies")
struct NotificationPolicyTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("a failed delivery is retried after 5 s, doubling to at most 10 minutes, and given up on 24 hours after the event")
    func deliveryRetry() {
        let created = now
        let delays = (1...10).map { NotificationRetry.next(afterAttempts: $0, now: now, createdAt: created)?.timeIntervalSince(now) }
        #expect(delays == [5, 10, 20, 40, 80, 160, 320, 600, 600, 600])
        #expect(abs((NotificationRetry.next(afterAttempts: 1, now: now, createdAt: created, first: 0.1)?.timeIntervalSince(now) ?? 0) - 0.1) < 0.001)
        #expect(NotificationRetry.next(afterAttempts: 3, now: now, createdAt: now.addingTimeInterval(-86_399)) != nil)
        #expect(NotificationRetry.next(afterAttempts: 3, now: now, createdAt: now.addingTimeInterval(-86_400)) == nil)
    }

    @Test("a failed hook runs again after 10 s, doubling, for 5 runs in all")
    func hookRetry() {
        let delays = (1...5).map { HookRetry.next(afterRun: $0, now: now)?.timeIntervalSince(now) }
        #expect(delays == [10, 20, 40, 80, nil])
        #expect(abs((HookRetry.next(afterRun: 1, now: now, first: 0.5)?.timeIntervalSince(now) ?? 0) - 0.5) < 0.001)
    }

    @Test("targets: url or command, format, secret, event filter, timeout; mistakes name their place")
    func targets() throws {
        let text = #"[{"url": "https://hooks.slack.com/services/T/B/x", "format": "slack", "events": ["batch.completed", "job.failed"]}, {"command": "notify-send 'kling batch' done", "timeout": "5s"}, {"command": "logger -t kb", "shell": "true", "secret": "s"}]"#
        let targets = try NotificationTarget.parseList(text, origin: "config.yaml: notify")
        #expect(targets.count == 3)
        #expect(targets[0].format == .slack && targets[0].wants("job.failed") && !targets[0].wants("stalled"))
        #expect(targets[1].endpoint == .command(["notify-send", "kling batch", "done"]) && targets[1].timeout == .seconds(5) && targets[1].wants("stalled"))
        #expect(targets[2].endpoint == .command(["/bin/sh", "-c", "logger -t kb"]))
        #expect(targets[0].label == "https://hooks.slack.com/services/T/B/x (slack), events batch.completed,job.failed")
        #expect(!targets[2].label.contains("\"s\"") && targets[2].label.contains("secret "))
        #expect(targets[0].key != targets[1].key && targets[0].key == NotificationTarget(endpoint: targets[0].endpoint).key, "keyed by where it goes only")
        for (bad, message) in [
            (#"[{"url": "ftp://x"}]"#, "notify[0].url must be an http or https URL"),
            (#"[{"url": "https://x", "command": "y"}]"#, "notify[0] needs exactly one of url: or command:"),
            (#"[{"url": "https://x", "events": ["batch.done"]}]"#, "notify[0].events: unknown event 'batch.done'"),
            (#"[{"url": "https://x", "format": "xml"}]"#, "notify[0].format must be json or slack"),
            (#"[{"command": "a 'b"}]"#, "notify[0].command: a quote is not closed"),
            (#"[{"url": "https://x", "retries": 3}]"#, "notify[0]: unknown key 'retries'"),
            (#"{"url": "https://x"}"#, "notify must be a list of targets"),
        ] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try NotificationTarget.parseList(bad, origin: "notify") }
            do {
                _ = try NotificationTarget.parseList(bad, origin: "notify")
            } catch {
                #expect("\(error)".contains(message), "\(error)")
            }
        }
    }

    @Test("the signature is HMAC-SHA256 of the raw body, as RFC 4231's test case 2 computes it")
    func signature() {
        let body = Array("what do ya want for nothing?".utf8)
        #expect(NotificationMessage.signature(body, secret: "Jefe") == "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test("our JSON carries the id, the type and the data; Slack gets one line of text")
    func messages() throws {
        let event = OutboxEvent(id: "evt_1", kind: OutboxEvent.batchCompleted, payload: [
            "batch": "tower", "jobs": 10, "counts": ["completed": 8, "failed": 2, "cancelled": 0], "seconds_of_video": 24,
            "cost_usd": "$3.36", "output": "/out/2026-12-02/tower", "failed_jobs": ["shot-3", "shot-7"],
        ], at: now)
        let json = try JSONValue.parse(Data(NotificationMessage(event: event, format: .json).body))
        #expect(json["id"] == "evt_1" && json["type"] == "batch.completed" && json["data"]?["jobs"] == 10)
        let slack = try JSONValue.parse(Data(NotificationMessage(event: event, format: .slack).body))
        #expect(slack == ["text": "kling-batch: batch tower finished: 8 completed, 2 failed, 0 cancelled; 24 s of video, $3.36. Failed: shot-3, shot-7. Output: /out/2026-12-02/tower"])
        let headers = Dictionary(uniqueKeysWithValues: NotificationMessage(event: event, format: .json).headers(secret: "k"))
        #expect(headers["X-Kling-Batch-Event-Id"] == "evt_1" && headers["X-Kling-Batch-Signature"]?.hasPrefix("sha256=") == true)
    }

    @Test("a command gets the event on stdin and its fields as KLING_BATCH_* variables, never the key; a hung one is killed")
    func commands() async throws {
        setenv("FAL_KEY", "secret-key-for-this-test", 1)
        defer { unsetenv("FAL_KEY") }
        let runner = CommandRunner()
        let outcome = await runner.run(["/bin/sh", "-c", "cat; echo; echo \"[$KLING_BATCH_BATCH] [${FAL_KEY:-none}]\"; exit 4"],
                                       stdin: Array("{\"id\":1}".utf8), environment: ["KLING_BATCH_BATCH": "tower"], timeout: .seconds(30))
        #expect(outcome.status == 4 && !outcome.succeeded && !outcome.timedOut)
        #expect(outcome.tail == ["{\"id\":1}", "[tower] [none]"])
        let hung = await runner.run(["sleep", "30"], stdin: [], environment: [:], timeout: .milliseconds(200))
        #expect(hung.timedOut && hung.status == nil && hung.summary == "killed at its timeout")
        let missing = await runner.run(["no-such-program-kb"], stdin: [], environment: [:], timeout: .seconds(1))
        #expect(missing.startError?.contains("not found in PATH") == true)
    }

    @Test("a command whose task is cancelled (the runner stopping) is killed and reaped, and says so")
    func cancelledCommand() async throws {
        let folder = try TemporaryDirectory("cancelled-command")
        defer { folder.remove() }
        let started = folder.path + "/started"
        let task = Task {
            await CommandRunner().run(["/bin/sh", "-c", "echo $$ > \(started).tmp && mv \(started).tmp \(started) && exec sleep 30"],
                                      stdin: [], environment: [:], timeout: .seconds(60))
        }
        // Waits for the child to say it runs (its pid in a file), then stops the runner's task.
        while !FileManager.default.fileExists(atPath: started) { try await Task.sleep(for: .milliseconds(20)) }
        let pid = try #require(Int32(String(contentsOfFile: started, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        task.cancel()
        let outcome = await task.value
        #expect(outcome.cancelled && !outcome.succeeded && outcome.status == nil && outcome.summary == "stopped with the runner")
        #expect(kill(pid, 0) != 0 && errno == ESRCH, "the child is gone, reaped: no zombie left")
    }

    @Test("a command that leaves a program running in the background has ended when it exits; at a timeout its whole group is killed")
    func backgroundGrandchild() async throws {
        let runner = CommandRunner()
        // The child exits at once, leaving a sleeper that holds its output pipe: its exit and status are what count.
        let left = await runner.run(["/bin/sh", "-c", "sleep 600 & echo $!; exit 3"], stdin: [], environment: [:], timeout: .seconds(300))
        #expect(left.status == 3 && !left.timedOut && !left.cancelled, "\(left)")
        let sleeper = try #require(left.tail.first.flatMap { Int32($0) })
        #expect(Self.alive(sleeper), "what it started in the background is its own business")
        kill(sleeper, SIGKILL)
        // One that waits for its background program past the timeout: both are killed, the sleeper too.
        let hung = await runner.run(["/bin/sh", "-c", "sleep 600 & echo $!; wait"], stdin: [], environment: [:], timeout: .milliseconds(300))
        #expect(hung.timedOut && hung.status == nil, "\(hung)")
        let waited = try #require(hung.tail.first.flatMap { Int32($0) })
        #expect(!Self.alive(waited), "a timeout reaches the whole process group")
    }

    @Test("a command gets its stdin in full, even past a pipe's buffer, and no descriptor of ours but 0, 1 and 2")
    func stdinAndDescriptors() async throws {
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: 300_000)
        let outcome = await CommandRunner().run(["/bin/sh", "-c", "wc -c; ls /proc/self/fd | wc -l"], stdin: body, environment: [:], timeout: .seconds(60))
        #expect(outcome.status == 0, "\(outcome)")
        // 0, 1, 2 and the one ls opens to list the folder.
        #expect(outcome.tail.map { $0.trimmingCharacters(in: .whitespaces) } == ["300000", "4"])
    }

    /// Whether `pid` runs (a zombie waiting for its reaper does not).
    static func alive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return stat[stat.index(close, offsetBy: 2)] != "Z"
    }
}

