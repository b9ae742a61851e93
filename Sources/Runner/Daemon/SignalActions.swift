import Logging
import ServiceLifecycle
import UnixSignals

/// SIGHUP reloads the configuration; SIGUSR1 (sent by CLI commands that changed the store) wakes the runner.
public struct SignalActions: Service {
    public let reload: @Sendable () async -> Void
    public let wake: @Sendable () -> Void

    public init(reload: @escaping @Sendable () async -> Void, wake: @escaping @Sendable () -> Void) {
        self.reload = reload
        self.wake = wake
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup, .sigusr1)
        for await signal in signals.cancelOnGracefulShutdown() {
            if signal == .sighup { await reload() } else { wake() }
        }
    }
}
