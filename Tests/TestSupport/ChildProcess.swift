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
    private var collectedStdout: [String] = []
    private var collectedStderr = Data()
    private var stdoutIterator: AsyncStream<String>.AsyncIterator

    /// The folder holding this package's built products (where the test bundle itself lives).
    public static var productsDirectory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    }

    /// Starts `executable` (a product name such as `kling-batch`) with `arguments`.
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, currentDirectory: URL? = nil) throws {
        var url = Self.productsDirectory.appendingPathComponent(executable)
        if !FileManager.default.isExecutableFile(atPath: url.path) {
            // `swift test` runs the bundle from inside `…/debug/X.xctest/…` on some layouts.
            url = Self.productsDirectory.deletingLastPathComponent().appendingPathComponent(executable)
        }
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw HarnessError("no built executable \(executable) next to \(Self.productsDirectory.path); run `swift build` first")
        }
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
        Thread.detachNewThread { [self] in
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
            while true {
                let chunk = err.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                lock.withLock { collectedStderr.append(chunk) }
            }
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

    public var stdout: String { lock.withLock { collectedStdout.joined(separator: "\n") } }
    public var stderr: String { lock.withLock { String(decoding: collectedStderr, as: UTF8.self) } }
    public var pid: Int32 { process.processIdentifier }

    public func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits for the process to exit and returns its status, without blocking a cooperative thread.
    @discardableResult
    public func waitForExit() async -> Int32 {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { [process] in
                process.waitUntilExit()
                continuation.resume()
            }
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
