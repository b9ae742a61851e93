import Synchronization

/// Runs work past fal (the result, the download, the manifest) apart from the work that keeps fal busy (noticing a
/// finished request, claiming and submitting the next job), so that when a wave of jobs finishes at once the latter
/// does not wait in line behind the former.
///
/// On Linux this is not an OS priority: Swift gives each task priority its own queue, and libdispatch gives each its
/// own threads (as many as CPUs), which the kernel time-slices equally. What it buys is a separate line, with
/// fsyncs and SQLite writes of downloads blocking those threads, not the default pool's.
///
/// Awaiting a task's `value` would raise the task to the waiter's priority (its queue), so the result comes back
/// through a continuation instead. The caller's cancellation reaches the work. Task-local values do not (the task
/// is detached): nothing on these paths reads one, and anything added there must not rely on them.
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
