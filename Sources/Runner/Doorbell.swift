import Synchronization

/// Wakes the one loop that waits on it: rung when a job finishes, a slot frees, work arrives or a setting
/// changes. The dispatcher sleeps on it instead of polling, so an idle runner uses no CPU.
public final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    public init() {}

    public func ring() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.rung = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns when rung (at once if it was rung since the last wait), when `deadline` passes, or on cancellation.
    public func wait(until deadline: ContinuousClock.Instant? = nil) async {
        await withTaskGroup(of: Void.self) { group in
            if let deadline {
                group.addTask {
                    try? await Task.sleep(until: deadline, clock: .continuous)
                    if !Task.isCancelled { self.ring() }
                }
            }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let ready = state.withLock { state -> Bool in
                        if state.rung {
                            state.rung = false
                            return true
                        }
                        state.waiter = continuation
                        return false
                    }
                    if ready { continuation.resume() }
                }
            } onCancel: {
                self.ring()
            }
            group.cancelAll()
        }
    }
}
