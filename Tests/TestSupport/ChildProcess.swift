import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A built executable of this package run as a separate process, with its output readable line by line.
public final class ChildProcess: @unchecked Sendable {
    public let process = Process()
    private let stdoutLines: AsyncStream<String>
    private let stdoutContinuation: AsyncStream<String>.Continuation
    private let lock = NSLock()
    /// The two threads reading stdout and stderr, left at EOF: `waitForExit` waits for them, so output is complete.
    private let readers = DispatchGroup()
    /// Told when the process has ended (not `waitUntilExit`: see `ProcessExit`).
    private let exit: ProcessExit
    private var collectedStdout: [String] = []
    private var collectedStderr = Data()
    private var stdoutIterator: AsyncStream<String>.AsyncIterator
    /// Waits on stderr, each with its own number so that a cancelled wait can take itself out.
    private var watchers: [(id: Int, condition: @Sendable (String) -> Bool, continuation: CheckedContinuation<Void, Never>)] = []
    private var nextWatcher = 0
    /// Actions to run on the stderr reader's thread once stderr holds their text (`onStderr`).
    private var triggers: [(text: String, action: @Sendable () -> Void)] = []
    /// Set once the process closed stderr (it exited): waiting for more output is pointless.
    private var stderrClosed = false

    /// The folder holding this package's built products (where the test bundle itself lives).
    public static var productsDirectory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    }

    /// The built product `executable` (such as `kling-batch`) of this package.
    public static func product(_ executable: String) throws -> URL {
        var url = productsDirectory.appendingPathComponent(executable)
        if !FileManager.default.isExecutableFile(atPath: url.path) {
            // `swift test` runs the bundle from inside `…/debug/X.xctest/…` on some layouts.
            url = productsDirectory.deletingLastPathComponent().appendingPathComponent(executable)
        }
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw HarnessError("no built executable \(executable) next to \(productsDirectory.path); run `swift build` first")
        }
        return url
    }

    /// Starts `executable` (a product name such as `kling-batch`) with `arguments`.
    public convenience init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, currentDirectory: URL? = nil) throws {
        try self.init(at: Self.product(executable), arguments, environment: environment, currentDirectory: currentDirectory)
    }

    /// Starts the program at `url` with `arguments`.
    public init(at url: URL, _ arguments: [String], environment: [String: String]? = nil, currentDirectory: URL? = nil) throws {
        process.executableURL = url
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        (stdoutLines, stdoutContinuation) = AsyncStream.makeStream(of: String.self)
        stdoutIterator = stdoutLines.makeAsyncIterator()
        exit = try ProcessExit(running: process)
        let continuation = stdoutContinuation
        let readers = self.readers
        readers.enter()
        readers.enter()
        Thread.detachNewThread { [self] in
            defer { readers.leave() }
            var pending = Data()
            while true {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    lock.withLock { collectedStdout.append(line) }
                    continuation.yield(line)
                }
            }
            if !pending.isEmpty {
                let line = String(decoding: pending, as: UTF8.self)
                lock.withLock { collectedStdout.append(line) }
                continuation.yield(line)
            }
            continuation.finish()
        }
        Thread.detachNewThread { [self] in
            defer { readers.leave() }
            while true {
                let chunk = err.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                let (ready, actions) = lock.withLock { () -> ([CheckedContinuation<Void, Never>], [@Sendable () -> Void]) in
                    collectedStderr.append(chunk)
                    return (takeSatisfiedWatchers(), takeSatisfiedTriggers())
                }
                actions.forEach { $0() }
                ready.forEach { $0.resume() }
            }
            let all = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
                stderrClosed = true
                defer { watchers = [] }
                return watchers.map(\.continuation)
            }
            all.forEach { $0.resume() }
        }
    }

    /// The next line the process writes to stdout, or nil once it closed stdout.
    public func nextLine() async -> String? {
        await stdoutIterator.next()
    }

    /// Waits for a stdout line starting with `prefix`, returning it.
    public func waitForLine(startingWith prefix: String) async throws -> String {
        while let line = await nextLine() {
            if line.hasPrefix(prefix) { return line }
        }
        throw HarnessError("\(process.executableURL?.lastPathComponent ?? "process") exited without printing '\(prefix)…'; stderr: \(stderr)")
    }

    /// Waits until stderr holds `text` at least `count` times, or the process closed it, or the test is cancelled
    /// (at its time limit; what was awaited and the end of stderr are printed then, to say where it hung).
    public func waitForStderr(_ text: String, count: Int = 1) async {
        await waitForStderr(describing: "'\(text)' ×\(count)") { Self.occurrences(of: text, in: $0) >= count }
    }

    /// Waits until stderr, as a whole, satisfies `condition` (checked on every new chunk), or the process closed it,
    /// or the test is cancelled.
    public func waitForStderr(describing description: String = "a condition", where condition: @escaping @Sendable (String) -> Bool) async {
        let id = lock.withLock { () -> Int in
            nextWatcher += 1
            return nextWatcher
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = lock.withLock { () -> Bool in
                    // A cancellation that came first has set the flag before its handler found nothing to resume.
                    if Task.isCancelled || stderrClosed || condition(String(decoding: collectedStderr, as: UTF8.self)) { return true }
                    watchers.append((id, condition, continuation))
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            let waiting = lock.withLock { () -> CheckedContinuation<Void, Never>? in
                guard let index = watchers.firstIndex(where: { $0.id == id }) else { return nil }
                return watchers.remove(at: index).continuation
            }
            waiting?.resume()
        }
        if Task.isCancelled && !condition(stderr) {
            print("[\(name) \(pid)] cancelled while waiting for \(description) on stderr; its last 6000 bytes:\n\(stderr.suffix(6000))")
        }
    }

    /// Runs `action` on the stderr reader's own thread as soon as stderr holds `text`: for an answer the child needs
    /// within a deadline of its own, which a test waiting for one of its few shared threads could miss.
    public func onStderr(_ text: String, run action: @escaping @Sendable () -> Void) {
        let now = lock.withLock { () -> Bool in
            if occurrences(of: text) > 0 { return true }
            triggers.append((text, action))
            return false
        }
        if now { Thread.detachNewThread(action) }
    }

    /// Triggers whose text has appeared; called with the lock held.
    private func takeSatisfiedTriggers() -> [@Sendable () -> Void] {
        guard !triggers.isEmpty else { return [] }
        var due: [@Sendable () -> Void] = []
        triggers.removeAll { trigger in
            guard occurrences(of: trigger.text) > 0 else { return false }
            due.append(trigger.action)
            return true
        }
        return due
    }

    /// How many times `text` occurs in stderr so far.
    public func stderrCount(_ text: String) -> Int { lock.withLock { occurrences(of: text) } }

    private func occurrences(of text: String) -> Int {
        Self.occurrences(of: text, in: String(decoding: collectedStderr, as: UTF8.self))
    }

    private static func occurrences(of text: String, in output: String) -> Int {
        output.components(separatedBy: text).count - 1
    }

    /// Watchers whose condition now holds; called with the lock held.
    private func takeSatisfiedWatchers() -> [CheckedContinuation<Void, Never>] {
        guard !watchers.isEmpty else { return [] }
        let text = String(decoding: collectedStderr, as: UTF8.self)
        var ready: [CheckedContinuation<Void, Never>] = []
        watchers.removeAll { watcher in
            guard watcher.condition(text) else { return false }
            ready.append(watcher.continuation)
            return true
        }
        return ready
    }

    /// The executable's name, for messages.
    private var name: String { process.executableURL?.lastPathComponent ?? "process" }

    public var stdout: String { lock.withLock { collectedStdout.joined(separator: "\n") } }
    public var stderr: String { lock.withLock { String(decoding: collectedStderr, as: UTF8.self) } }
    public var pid: Int32 { process.processIdentifier }

    public func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits for the process to exit and returns its status, without blocking a cooperative thread. A cancelled test
    /// (at its time limit) kills the process instead of waiting for ever.
    @discardableResult
    public func waitForExit() async -> Int32 {
        await withTaskCancellationHandler {
            await exit.wait()
            // Everything the process wrote is read before its output is looked at (a grandchild that kept the pipes
            // open could delay EOF: not for ever).
            await withCheckedContinuation { continuation in
                Thread.detachNewThread { [readers] in
                    _ = readers.wait(timeout: .now() + 10)
                    continuation.resume()
                }
            }
        } onCancel: { [process] in
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
