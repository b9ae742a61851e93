import Foundation
import Synchronization

/// A child's end, told by its termination handler (set before it starts, so a quick exit is not missed) instead of
/// `Process.waitUntilExit`, which polls the calling thread's run loop and has been seen to hang for good under load
/// on Linux: a test suite stuck at its time limit, or one of the test's few shared threads held for good.
public final class ProcessExit: Sendable {
    private let state = Mutex<(exited: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
    private let semaphore = DispatchSemaphore(value: 0)

    /// Starts `process`, watching for its end.
    public init(running process: Process) throws {
        process.terminationHandler = { [self] _ in ended() }
        try process.run()
    }

    /// Waits for the end without holding a thread.
    public func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let exited = state.withLock { state in
                if !state.exited { state.waiters.append(continuation) }
                return state.exited
            }
            if exited { continuation.resume() }
        }
    }

    /// Waits for the end on this thread (for synchronous helpers that run a short command).
    public func waitBlocking() {
        semaphore.wait()
        semaphore.signal()
    }

    private func ended() {
        let waiters = state.withLock { state in
            state.exited = true
            defer { state.waiters = [] }
            return state.waiters
        }
        semaphore.signal()
        waiters.forEach { $0.resume() }
    }
}

extension Process {
    /// Runs the process to its end on this thread and returns its exit status (see `ProcessExit`).
    public func runToEnd() throws -> Int32 {
        try ProcessExit(running: self).waitBlocking()
        return terminationStatus
    }
}
