import Foundation
import KlingCore
@testable import Runner
import Synchronization
import Testing

/// `LowPriority`: work past fal runs below the work that keeps fal busy, and stays there while it is awaited.
@Suite("Low-priority work")
struct LowPriorityTests {
    struct Refused: Error, Equatable {}

    @Test("the work runs at low priority even when a high-priority task waits for it (no escalation), and its value comes back")
    func staysLow() async throws {
        let seen = try await Task(priority: .high) {
            try await LowPriority.run { Task.currentPriority }
        }.value
        #expect(seen == .low)
    }

    @Test("an error of the work reaches the caller as it was thrown")
    func passesErrors() async {
        await #expect(throws: Refused.self) {
            try await LowPriority.run { () async throws -> Int in throw Refused() }
        }
    }

    @Test("cancelling the caller cancels the work, which ends at once; the caller gets its CancellationError")
    func cancels() async throws {
        let started = Doorbell()
        let sawCancel = Mutex(false)
        let caller = Task {
            try await LowPriority.run {
                started.ring()
                do {
                    try await Task.sleep(for: .seconds(600))
                } catch {
                    sawCancel.withLock { $0 = true }
                    throw error
                }
            }
        }
        _ = await started.wait()
        caller.cancel()
        await #expect(throws: CancellationError.self) { try await caller.value }
        #expect(sawCancel.withLock { $0 })
    }

    @Test("a caller cancelled before the work starts still cancels it")
    func cancelledFirst() async throws {
        let caller = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await LowPriority.run { () async throws -> Bool in
                try await Task.sleep(for: .seconds(600))
                return true
            }
        }
        await #expect(throws: CancellationError.self) { try await caller.value }
    }
}
