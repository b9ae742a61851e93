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
    private var collectedStdout: [String] = []
    private var collectedStderr = Data()
    private var stdoutIterator: AsyncStream<String>.AsyncIterator
    private var stderrWatchers: [(String, Int, CheckedContinuation<Void, Never>)] = []
    private var predicateWatchers: [(@Sendable (String) -> Bool, CheckedContinuation<Void, Never>)] = []
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
        try process.run()
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
                let ready = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
                    collectedStderr.append(chunk)
                    return takeSatisfiedWatchers()
                }
                ready.forEach { $0.resume() }
            }
            let all = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
                stderrClosed = true
                defer {
                    stderrWatchers = []
                    predicateWatchers = []
                }
                return stderrWatchers.map(\.2) + predicateWatchers.map(\.1)
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

    /// Waits until stderr holds `text` at least `count` times, or the process closed stderr.
    public func waitForStderr(_ text: String, count: Int = 1) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = lock.withLock { () -> Bool in
                if occurrences(of: text) >= count || stderrClosed { return true }
                stderrWatchers.append((text, count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    /// Waits until stderr, as a whole, satisfies `condition` (checked on every new chunk), or the process closed it.
    public func waitForStderr(where condition: @escaping @Sendable (String) -> Bool) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = lock.withLock { () -> Bool in
                if condition(String(decoding: collectedStderr, as: UTF8.self)) || stderrClosed { return true }
                predicateWatchers.append((condition, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    /// How many times `text` occurs in stderr so far.
    public func stderrCount(_ text: String) -> Int { lock.withLock { occurrences(of: text) } }

    private func occurrences(of text: String) -> Int {
        String(decoding: collectedStderr, as: UTF8.self).components(separatedBy: text).count - 1
    }

    /// Watchers whose text has appeared often enough; called with the lock held.
    private func takeSatisfiedWatchers() -> [CheckedContinuation<Void, Never>] {
        var ready: [CheckedContinuation<Void, Never>] = []
        stderrWatchers.removeAll { text, count, continuation in
            guard occurrences(of: text) >= count else { return false }
            ready.append(continuation)
            return true
        }
        if !predicateWatchers.isEmpty {
            let text = String(decoding: collectedStderr, as: UTF8.self)
            predicateWatchers.removeAll { condition, continuation in
                guard condition(text) else { return false }
                ready.append(continuation)
                return true
            }
        }
        return ready
    }

    public var stdout: String { lock.withLock { collectedStdout.joined(separator: "\n") } }
    public var stderr: String { lock.withLock { String(decoding: collectedStderr, as: UTF8.self) } }
    public var pid: Int32 { process.processIdentifier }

    public func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits for the process to exit and returns its status, without blocking a cooperative thread.
    @discardableResult
    public func waitForExit() async -> Int32 {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { [process, readers] in
                process.waitUntilExit()
                // Everything the process wrote is read before its output is looked at (a grandchild that kept the
                // pipes open could delay EOF: not for ever).
                _ = readers.wait(timeout: .now() + 10)
                continuation.resume()
            }
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
