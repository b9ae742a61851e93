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

    func run(_ words: [String], stdin: [UInt8], environment extra: [String: String], timeout: Duration) async -> Outcome {
        guard let program = words.first, let executable = Self.resolve(program) else {
            return Outcome(status: nil, startError: "'\(words.first ?? "")' is not an executable program (not found in PATH)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(words.dropFirst())
        var environment = ProcessInfo.processInfo.environment.filter { !Self.withheld.contains($0.key) }
        environment.merge(extra) { _, new in new }
        process.environment = environment
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        let collected = Mutex<[UInt8]>([])
        output.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            collected.withLock { bytes in
                bytes += data
                if bytes.count > 65_536 { bytes.removeFirst(bytes.count - 65_536) }
            }
        }
        let exited = Doorbell()
        process.terminationHandler = { _ in exited.ring() }
        do {
            try process.run()
        } catch {
            output.fileHandleForReading.readabilityHandler = nil
            return Outcome(status: nil, startError: "\(error)")
        }
        try? input.fileHandleForWriting.write(contentsOf: Data(stdin))
        try? input.fileHandleForWriting.close()
        let timedOut = await Self.wait(for: exited, process: process, timeout: timeout)
        // Cancelled only when it was still running then: one that had just ended keeps its exit status.
        let cancelled = Task.isCancelled && !timedOut ? await Self.stop(process, exited: exited) : false
        output.fileHandleForReading.readabilityHandler = nil
        let bytes = collected.withLock { $0 } + Self.remaining(output.fileHandleForReading)
        let lines = String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline).suffix(Self.tailLines).map(String.init)
        return Outcome(status: timedOut || cancelled ? nil : process.terminationStatus, timedOut: timedOut, tail: lines, cancelled: cancelled)
    }

    /// Cancelled while the child runs: SIGTERM, SIGKILL 2 s later, and waits (on a task of its own, which the
    /// cancellation does not reach) until it is reaped, so no child outlives the runner's wish to stop.
    @discardableResult
    private static func stop(_ process: Process, exited: Doorbell) async -> Bool {
        guard process.isRunning else { return false }
        kill(process.processIdentifier, SIGTERM)
        await Task {
            let killer = Task {
                try? await Task.sleep(for: .seconds(2))
                if !Task.isCancelled, process.isRunning { kill(process.processIdentifier, SIGKILL) }
            }
            while await !exited.wait(until: .now + .milliseconds(200)), process.isRunning {}
            killer.cancel()
        }.value
        return true
    }

    /// What is left in the pipe now, without waiting for its end, so no read ever holds one of the runtime's few
    /// threads. (A grandchild left running in the background, `sh -c 'curl … &'`, still delays the child's exit as
    /// Foundation's `Process` sees it, until it ends or the timeout: it inherits what the child had open.)
    private static func remaining(_ handle: FileHandle) -> [UInt8] {
        let fd = handle.fileDescriptor
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while case let count = read(fd, &buffer, buffer.count), count > 0 {
            bytes += buffer[0..<count]
            if bytes.count > 65_536 { bytes.removeFirst(bytes.count - 65_536) }
        }
        return bytes
    }

    /// Waits for the exit; at the timeout sends SIGTERM, then SIGKILL 2 s later. True when it was timed out.
    private static func wait(for exited: Doorbell, process: Process, timeout: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                // The handler's ring is the exit; isRunning is only a fallback for a ring this loop never sees.
                while !Task.isCancelled, await !exited.wait(until: .now + .seconds(1)), process.isRunning {}
                return false
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                guard !Task.isCancelled, process.isRunning else { return false }
                kill(process.processIdentifier, SIGTERM)
                try? await Task.sleep(for: .seconds(2))
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                return true
            }
            let first = await group.next() ?? false
            if first {
                // Timed out: the exit still has to be seen, so the process is reaped.
                _ = await group.next()
                return true
            }
            group.cancelAll()
            return false
        }
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
