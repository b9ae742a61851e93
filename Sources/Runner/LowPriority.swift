import Synchronization

/// Runs work at low priority, so that when CPU is short (a wave of jobs finishing at once) the work that keeps fal
/// busy, noticing a finished request and submitting the next job, goes first, and downloads and manifests,
/// which only delay a video that is already paid for, wait their turn.
///
/// Awaiting a task's `value` would raise the task to the waiter's priority, so the result comes back through a
/// continuation instead. The caller's cancellation reaches the work.
enum LowPriority {
    static func run<Value: Sendable>(_ body: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let handle = Handle()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                handle.start(Task.detached(priority: .low) {
                    do {
                        continuation.resume(returning: try await body())
                    } catch {
                        continuation.resume(throwing: error)
                    }
                })
            }
        } onCancel: {
            handle.cancel()
        }
    }

    /// The detached task, and whether the caller was cancelled before it was recorded (it is cancelled then).
    private final class Handle: Sendable {
        private let state = Mutex<(task: Task<Void, Never>?, cancelled: Bool)>((nil, false))

        func start(_ task: Task<Void, Never>) {
            let cancelled = state.withLock { state in
                state.task = task
                return state.cancelled
            }
            if cancelled { task.cancel() }
        }

        func cancel() {
            state.withLock { state in
                state.cancelled = true
                return state.task
            }?.cancel()
        }
    }
}
