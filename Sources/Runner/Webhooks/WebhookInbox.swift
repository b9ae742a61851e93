import KlingCore
import Synchronization

/// Where verified webhooks meet the jobs waiting at fal: a webhook rings its request's doorbell, so the poller
/// looks at once instead of at its next scheduled poll. It remembers the request ids it was told, so fal's repeated
/// deliveries (and replays inside the signature window) are recognised and change nothing.
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
    }

    private let state = Mutex(State())
    /// How many told request ids are remembered; older ones are forgotten first.
    static let remembered = 20_000

    public init() {}

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
