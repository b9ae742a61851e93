import Synchronization

/// Wakes every task waiting on it at once: executors that wait for the disk or the store to work again all
/// retry the moment it does, instead of each polling on its own schedule.
public final class Broadcast: Sendable {
    private struct State {
        /// How many times it has fired: a waiter that saw generation N and registers after the N+1-th fire returns at once.
        var generation: UInt64 = 0
        var nextID: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        /// Waiters cancelled before they were registered.
        var cancelled: Set<UInt64> = []
    }

    private let state = Mutex(State())

    public init() {}

    /// Wakes everyone waiting now.
    public func fire() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.generation += 1
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        waiters.forEach { $0.resume() }
    }

    /// The number of fires so far; pass it to `wait(after:atMost:)` to miss none that come after.
    public var generation: UInt64 { state.withLock { $0.generation } }

    /// Returns when fired after `generation` (at once if that already happened), after `limit`, or on
    /// cancellation, whichever comes first.
    public func wait(after generation: UInt64, atMost limit: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: limit) }
            group.addTask { await self.waitForFire(after: generation) }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForFire(after generation: UInt64) async {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let cancelledAlready = state.withLock { state -> Bool in
                    if state.cancelled.remove(id) != nil || state.generation != generation { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if cancelledAlready { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                if let waiter = state.waiters.removeValue(forKey: id) { return waiter }
                state.cancelled.insert(id)
                return nil
            }
            waiter?.resume()
        }
    }
}
