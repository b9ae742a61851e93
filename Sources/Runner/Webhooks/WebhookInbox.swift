import KlingCore
import Logging
import Synchronization

/// Where verified webhooks meet the jobs waiting at fal: a webhook rings its request's doorbell, so the poller
/// looks at once instead of at its next scheduled poll. It remembers the request ids it was told, so fal's repeated
/// deliveries (and replays inside the signature window) are recognised and change nothing.
///
/// While webhooks arrive, pollers poll at their slowest pace. A request that a poll found ended and whose webhook
/// has not come `lossGrace` later is evidence that webhooks are lost (a proxy down, a wrong URL): for `distrustFor`
/// the normal polling schedule is back, so a broken webhook path costs at most one slow poll per job.
public final class WebhookInbox: Sendable {
    /// What a delivery did.
    public enum Arrival: Sendable, Equatable {
        /// A poller was waiting on the request and now looks at once.
        case woke
        /// No poller waits on it yet (it is between steps, or the runner just started): the next wait ends at once.
        case early
        /// The request was told before: ignored.
        case duplicate
    }

    private struct State {
        var bells: [String: Doorbell] = [:]
        var seen: Set<String> = []
        var order: [String] = []
        var listening = false
        /// Requests a poll found ended, waiting for their webhook, since when.
        var unconfirmed: [String: ContinuousClock.Instant] = [:]
        var distrustedUntil: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    private let logger: Logger?
    private let now: @Sendable () -> ContinuousClock.Instant
    static let lossGrace: Duration = .seconds(30)
    static let distrustFor: Duration = .seconds(600)
    /// How many told request ids are remembered; older ones are forgotten first.
    static let remembered = 20_000

    public init(logger: Logger? = nil, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.logger = logger
        self.now = now
    }

    /// Whether pollers may count on webhooks to say when a request ends: listening, and none lost lately.
    public var isRelied: Bool {
        let instant = now()
        let lost = state.withLock { state -> String? in
            guard state.listening else { return nil }
            if let until = state.distrustedUntil, instant < until { return nil }
            guard let (id, _) = state.unconfirmed.first(where: { instant - $0.value >= Self.lossGrace }) else { return nil }
            state.unconfirmed = [:]
            state.distrustedUntil = instant + Self.distrustFor
            return id
        }
        if let lost {
            logger?.warning("webhooks seem lost: request \(lost) ended \(Self.lossGrace.formattedSeconds) ago and its webhook never came; polling on the normal schedule for \(Self.distrustFor.formattedSeconds)")
        }
        return state.withLock { state in state.listening && (state.distrustedUntil.map { instant >= $0 } ?? true) }
    }

    /// A poll found `requestID` ended before its webhook came.
    func polledEnded(_ requestID: String) {
        let instant = now()
        state.withLock { state in
            guard !state.seen.contains(requestID), state.unconfirmed.count < 10_000 else { return }
            state.unconfirmed[requestID] = instant
        }
    }

    /// Whether the HTTP listener serves the webhook path: only then are submits sent with `fal_webhook`.
    public var isListening: Bool { state.withLock { $0.listening } }

    /// Called by the listener once it serves the webhook path.
    public func startListening() { state.withLock { $0.listening = true } }

    /// The doorbell a poller waits on while its request is at fal; rung already when the webhook came first.
    func bell(for requestID: String) -> Doorbell {
        let (bell, told) = state.withLock { state -> (Doorbell, Bool) in
            if let bell = state.bells[requestID] { return (bell, false) }
            let bell = Doorbell()
            state.bells[requestID] = bell
            return (bell, state.seen.contains(requestID))
        }
        if told { bell.ring() }
        return bell
    }

    /// The poller stopped waiting on the request.
    func leave(_ requestID: String) { _ = state.withLock { $0.bells.removeValue(forKey: requestID) } }

    /// A verified webhook for `requestID`.
    public func arrive(_ requestID: String) -> Arrival {
        let (arrival, bell) = state.withLock { state -> (Arrival, Doorbell?) in
            state.unconfirmed[requestID] = nil
            guard state.seen.insert(requestID).inserted else { return (.duplicate, nil) }
            state.order.append(requestID)
            if state.order.count > Self.remembered {
                let forgotten = state.order.prefix(Self.remembered / 2)
                state.seen.subtract(forgotten)
                state.order.removeFirst(forgotten.count)
            }
            let bell = state.bells[requestID]
            return (bell == nil ? .early : .woke, bell)
        }
        bell?.ring()
        return arrival
    }
}
