import FalClient
import Foundation
import Synchronization

/// One job's status stream, held open while the job is at fal: statuses arrive as fal sends them, so the runner
/// knows a video is ready the moment it is. When the stream breaks, ends early or stays silent, the feed closes
/// it and says when it may be opened again (1 s, doubling to 30 s); the poller polls meanwhile.
final class StatusFeed: Sendable {
    enum Event: Sendable {
        case status(RequestStatus)
        /// The stream ended before COMPLETED, or could not be opened; `why` is for the log.
        case ended(String)
    }

    private struct State {
        var stream: AsyncStream<Event>?
        var task: Task<Void, Never>?
        var failures = 0
        var reopenAt: ContinuousClock.Instant = .now
    }

    private let client: FalClient
    private let handle: FalRequestHandle
    private let state = Mutex(State())

    init(client: FalClient, handle: FalRequestHandle) {
        self.client = client
        self.handle = handle
    }

    deinit { state.withLock { $0.task?.cancel() } }

    /// Whether a stream is open now.
    var isOpen: Bool { state.withLock { $0.stream != nil } }

    /// When a closed stream may be opened again.
    var reopenAt: ContinuousClock.Instant { state.withLock { $0.reopenAt } }

    /// Opens the stream; its statuses and its end are read with `next`.
    func open() {
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .unbounded)
        let source = client.statusStream(handle)
        let task = Task {
            do {
                for try await status in source { continuation.yield(.status(status)) }
            } catch is CancellationError {
            } catch {
                continuation.yield(.ended("\(error)"))
            }
            continuation.finish()
        }
        state.withLock { state in
            state.task?.cancel()
            state.stream = stream
            state.task = task
        }
    }

    /// The next event, or nil when nothing came by `deadline` (the stream is then closed as silent).
    func next(until deadline: ContinuousClock.Instant) async -> Event? {
        guard let stream = state.withLock({ $0.stream }) else { return nil }
        let event: Event? = await withTaskGroup(of: Event?.self) { group in
            group.addTask {
                var iterator = stream.makeAsyncIterator()
                return await iterator.next() ?? .ended("the status stream closed")
            }
            group.addTask {
                try? await Task.sleep(until: deadline, clock: .continuous)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        switch event {
        case .status(let status):
            if case .completed = status.state { close(failed: false) } else { state.withLock { $0.failures = 0 } }
        case .ended, nil:
            // Cancelled (the runner stops, or a webhook came first) is no fault of the stream.
            close(failed: !Task.isCancelled)
        }
        return event
    }

    /// Closes the stream; after a failure the next open waits 1 s, doubling to 30 s.
    func close(failed: Bool) {
        state.withLock { state in
            state.task?.cancel()
            state.task = nil
            state.stream = nil
            guard failed else { return }
            state.failures += 1
            state.reopenAt = .now + .seconds(min(30, 1 << min(state.failures - 1, 5)))
        }
    }
}
