import Foundation
import JobStore
import Logging
import ServiceLifecycle
import Synchronization

/// Hands jobs to executors: resumes what was in flight, then claims queued jobs only while a fal slot is free and
/// the downloads keep up.
///
/// Every decision is `DispatcherStateMachine`'s; this service performs its actions (claims, counts, executors,
/// sleeps) and reports what happened. One task group holds one child per job being worked on; the loop sleeps on
/// the doorbell between events (a job finished, a slot freed, new work, a retry falling due), so an idle
/// dispatcher costs nothing. On graceful shutdown it stops claiming and cancels the executors, which leave every
/// job resumable.
public final class Dispatcher: Service, Sendable {
    /// `untilDone` returns once no unfinished job is left (`run --once`); `continuous` runs until shutdown (daemon).
    public enum Mode: Sendable { case untilDone, continuous }

    public let environment: RunnerEnvironment
    public let mode: Mode
    let machine: Mutex<DispatcherStateMachine>
    private let ending = Mutex<(reason: String?, unreachable: Bool)>((nil, false))
    /// When the store and output were last probed while paused: at most once per `localRecheck`.
    let lastProbe = Mutex<ContinuousClock.Instant?>(nil)
    /// Jobs at another origin when the run started: they stay unfinished, and this run never touches them.
    let foreignAtStart = Mutex(0)

    public init(environment: RunnerEnvironment, mode: Mode) {
        self.environment = environment
        self.mode = mode
        let configuration = environment.configuration
        machine = Mutex(DispatcherStateMachine(
            mode: mode, retry: configuration.retry, unreachableLimit: configuration.unreachableLimit, giveUpAfter: configuration.giveUpAfter,
            pastFalLimit: DispatcherStateMachine.pastFalLimit(downloads: configuration.downloadConcurrency)))
    }

    /// Why an `untilDone` run stopped before finishing (a refused key, fal unreachable); nil when it finished.
    public var abortReason: String? { ending.withLock { $0.reason } }

    /// Whether it stopped because fal did not answer (`run --once` exits 5: try again later).
    public var gaveUpOnFal: Bool { ending.withLock { $0.unreachable } }

    public func run() async throws {
        let store = environment.store
        let recovered = try await store.recoverInterrupted()
        if recovered.requeued + recovered.unknown > 0 {
            environment.logger.notice("recovered after an interruption: \(recovered.requeued) requeued, \(recovered.unknown) submits to reconcile")
        }
        try await store.recordOutputRoot(environment.layout.absoluteRoot)
        let endpoints = environment.client.endpoints
        try await store.recordFalBase(endpoints == .production ? nil : endpoints.queue.absoluteString)
        await reportForeignJobs()
        let resumable = try await store.resumableJobs().filter { !environment.isForeign($0) }
            .map { DispatcherStateMachine.Job(id: $0.id, occupiesSlot: $0.state != .downloading) }
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                perform(machine.withLock { $0.started(resumable: resumable) }, in: &group)
                await loop(in: &group)
                group.cancelAll()
            }
        } onGracefulShutdown: {
            let active = self.machine.withLock { $0.executors.count }
            self.environment.logger.notice(
                "stopping: nothing new is claimed; \(active) job\(active == 1 ? "" : "s") in hand \(active == 1 ? "is" : "are") left where the next start picks \(active == 1 ? "it" : "them") up (a submit on its way gets \(JobExecutor.stopGrace.formattedSeconds) for its answer)")
            self.stop()
        }
    }

    /// Stops claiming and asks executors to stop; `run` returns once they have.
    public func stop() {
        machine.withLock { $0.stop() }
        environment.doorbell.ring()
    }

    /// Wakes, asks the state machine what to do, does it, until the machine says the run is over.
    private func loop(in group: inout DiscardingTaskGroup) async {
        while !Task.isCancelled && !machine.withLock({ $0.stopping }) {
            var pending: [DispatcherStateMachine.Action]
            do {
                let gate = try await gateView()
                pending = machine.withLock { $0.woken(gate) }
                while !pending.isEmpty {
                    let action = pending.removeFirst()
                    switch action {
                    case .drive(let id, let after): start(id, after: after, in: &group)
                    case .claim(let limit): pending += try await claim(limit: limit, gate: gate)
                    case .checkDone: pending += try await checkDone(gate: gate)
                    case .wait(let until): await sleep(until: until)
                    case .finish(let reason, let unreachable):
                        ending.withLock { $0 = (reason, unreachable) }
                        return
                    }
                }
            } catch let error as StoreError where error.isTransient {
                await environment.pauseLocal(.store, error.description)
                await sleep(until: Date() + environment.configuration.localRecheck)
            } catch {
                environment.logger.error("dispatcher cannot read the store: \(error); retrying in 5 s")
                await sleep(until: Date().addingTimeInterval(5))
            }
        }
    }

    private func sleep(until date: Date?) async {
        await environment.doorbell.wait(until: date.map { ContinuousClock.now + .milliseconds(Int64(max(0, $0.timeIntervalSinceNow) * 1000) + 5) })
    }

    /// Performs `.drive` actions (the only ones the start and executor events produce).
    private func perform(_ actions: [DispatcherStateMachine.Action], in group: inout DiscardingTaskGroup) {
        for case .drive(let id, let after) in actions { start(id, after: after, in: &group) }
    }

    /// Runs an executor for the job; when its drive ends, the state machine says whether it drives again.
    private func start(_ id: Int64, after delay: Duration, in group: inout DiscardingTaskGroup) {
        group.addTask { [self] in
            var delay = delay
            while true {
                if delay > .zero { try? await Task.sleep(for: delay) }
                let ended: JobExecutor.Ending = Task.isCancelled
                    ? .stopped
                    : await JobExecutor(environment: environment, releaseFalSlot: { [self] in
                        machine.withLock { $0.slotReleased(id) }
                        environment.doorbell.ring()
                    }).drive(id)
                let next = machine.withLock { $0.driveEnded(id, ended) }
                environment.doorbell.ring()
                guard case .drive(_, let after)? = next.first else { return }
                delay = after
            }
        }
    }
}
