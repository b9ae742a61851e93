import Foundation
import KlingCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Runs a program (never through a shell unless its words say `/bin/sh -c`) with bytes on stdin, extra environment
/// variables, and a timeout after which it is terminated, then killed. Used by notification commands and hooks.
struct CommandRunner: Sendable {
    /// How a run ended.
    struct Outcome: Sendable, Equatable {
        /// The exit status; nil when it was killed at its timeout, or could not start.
        var status: Int32?
        var timedOut = false
        /// The last lines it printed (stdout and stderr together), for events and manifests.
        var tail: [String] = []
        /// Why it could not start, when it could not.
        var startError: String?
        /// Killed because the runner stopped (its task was cancelled).
        var cancelled = false

        var succeeded: Bool { status == 0 && !timedOut && !cancelled }

        /// One line for a log or an error: `exit 3`, `killed after 10s`, `cannot start: …`.
        var summary: String {
            if let startError { return "cannot start: \(startError)" }
            if cancelled { return "stopped with the runner" }
            if timedOut { return "killed at its timeout" }
            return "exit \(status.map(String.init) ?? "?")"
        }
    }

    /// Names no child needs and none may see: the fal key in any of its forms.
    static let withheld: Set<String> = ["FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET", "CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"]
    static let tailLines = 20

    /// Runs `words` to its end, its timeout, or the task's cancellation (the runner stopping).
    func run(_ words: [String], stdin: [UInt8], environment extra: [String: String], timeout: Duration) async -> Outcome {
        guard let program = words.first, let executable = Self.resolve(program) else {
            return Outcome(status: nil, startError: "'\(words.first ?? "")' is not an executable program (not found in PATH)")
        }
        var environment = ProcessInfo.processInfo.environment.filter { !Self.withheld.contains($0.key) }
        environment.merge(extra) { _, new in new }
        let child: SpawnedChild
        do {
            child = try SpawnedChild.start(executable, arguments: Array(words.dropFirst()), environment: environment, stdin: stdin)
        } catch {
            return Outcome(status: nil, startError: "\(error)")
        }
        let timedOut = await Self.wait(for: child, timeout: timeout)
        // Cancelled only when it was still running then: one that had just ended keeps its exit status.
        let cancelled = Task.isCancelled && !timedOut ? await Self.stop(child) : false
        let lines = String(decoding: child.output, as: UTF8.self).split(whereSeparator: \.isNewline).suffix(Self.tailLines).map(String.init)
        return Outcome(status: timedOut || cancelled ? nil : child.status, timedOut: timedOut, tail: lines, cancelled: cancelled)
    }

    /// Cancelled while the child runs: SIGTERM to its group, SIGKILL 2 s later, and waits (on a task of its own,
    /// which the cancellation does not reach) until it is reaped, so no child outlives the runner's wish to stop.
    private static func stop(_ child: SpawnedChild) async -> Bool {
        guard !child.finished else { return false }
        await Task { await terminate(child) }.value
        return true
    }

    /// SIGTERM to the child's group, SIGKILL 2 s later if it still runs; returns once it is reaped.
    private static func terminate(_ child: SpawnedChild) async {
        child.signal(SIGTERM)
        if await !child.exited.wait(until: .now + .seconds(2)) { child.signal(SIGKILL) }
        while !child.finished { _ = await child.exited.wait(until: .now + .seconds(1)) }
    }

    /// Waits for the exit; at the timeout terminates its group. True when it was timed out.
    private static func wait(for child: SpawnedChild, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        // The bell is the exit; `finished` is looked at too, for a ring that came before this wait began.
        while !child.finished {
            if Task.isCancelled { return false }
            guard ContinuousClock.now < deadline else {
                await Task { await terminate(child) }.value
                return true
            }
            _ = await child.exited.wait(until: deadline)
        }
        return false
    }

    /// The program's path: as written when it has a `/`, else the first match in PATH.
    static func resolve(_ program: String) -> String? {
        if program.contains("/") { return access(program, X_OK) == 0 ? program : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for folder in path.split(separator: ":") {
            let candidate = "\(folder)/\(program)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}
