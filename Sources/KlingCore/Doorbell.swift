import Synchronization

/// Wakes the one loop that waits on it: rung when a job finishes, a slot frees, work arrives, a setting changes
/// or a webhook comes. Loops sleep on it instead of polling, so an idle runner (or emulator) uses no CPU.
public final class Doorbell: Sendable {
    private struct State {
        /// Rung while nobody waited: the next wait returns at once.
        var rung = false
        /// The current wait ended by its deadline or cancellation before it began to wait.
        var expired = false
        var waiter: CheckedContinuation<Bool, Never>?
    }

    private let state = Mutex(State())

    public init() {}

    public func ring() {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.rung = true
            return nil
        }
        waiter?.resume(returning: true)
    }

    /// Returns when rung (at once if it was rung since the last wait), when `deadline` passes, or on cancellation;
    /// true only when it was rung.
    @discardableResult
    public func wait(until deadline: ContinuousClock.Instant? = nil) async -> Bool {
        state.withLock { $0.expired = false }
        return await withTaskGroup(of: Void.self) { group in
            if let deadline {
                group.addTask {
                    try? await Task.sleep(until: deadline, clock: .continuous)
                    if !Task.isCancelled { self.expire() }
                }
            }
            let rung = await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                    let (ready, displaced) = state.withLock { state -> (Bool?, CheckedContinuation<Bool, Never>?) in
                        if state.rung {
                            state.rung = false
                            return (true, nil)
                        }
                        if state.expired { return (false, nil) }
                        // One waiter at a time: a second one takes over, and the first returns as not rung.
                        defer { state.waiter = continuation }
                        return (nil, state.waiter)
                    }
                    displaced?.resume(returning: false)
                    if let ready { continuation.resume(returning: ready) }
                }
            } onCancel: {
                self.expire()
            }
            group.cancelAll()
            return rung
        }
    }

    /// Ends the current wait without a ring (deadline or cancellation), even one that has not begun to wait yet.
    private func expire() {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            state.expired = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: false)
    }
}
