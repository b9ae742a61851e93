import Logging
import ServiceLifecycle
import UnixSignals

/// SIGHUP reloads the configuration; SIGUSR1 (sent by CLI commands that changed the store) wakes the runner.
///
/// The handlers are registered by `init`, before the service group starts: a signal sent the moment systemd
/// hears READY=1 is never lost (nor fatal).
public struct SignalActions: Service {
    public let reload: @Sendable () async -> Void
    public let wake: @Sendable () -> Void
    private let signals: UnixSignalsSequence

    public init(reload: @escaping @Sendable () async -> Void, wake: @escaping @Sendable () -> Void) async {
        self.reload = reload
        self.wake = wake
        signals = await UnixSignalsSequence(trapping: .sighup, .sigusr1)
    }

    public func run() async throws {
        for await signal in signals.cancelOnGracefulShutdown() {
            if signal == .sighup { await reload() } else { wake() }
        }
    }
}
