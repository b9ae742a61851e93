import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// A faithful, fault-injecting stand-in for fal's queue, storage, platform API and file hosts.
///
/// Tests start it in-process on port 0 with `withRunning`; the `fal-emulator` executable and
/// `kling-batch run --simulate` run the same application.
public struct FalEmulator: Sendable {
    /// Requests, uploads, counters and knobs; tests read and change it directly.
    public let state: EmulatorState
    public let logger: Logger

    public init(configuration: EmulatorConfiguration = .init(), logger: Logger = Logger(label: "fal-emulator")) {
        self.state = EmulatorState(configuration: configuration)
        self.logger = logger
    }

    /// The Hummingbird application serving every fal call on one address.
    /// - Parameter onListening: called with the base URL once the socket is bound (port 0 picks a free port).
    public func makeApplication(
        host: String = "127.0.0.1", port: Int = 0, onListening: @escaping @Sendable (URL) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let state = self.state
        return Application(
            responder: EmulatorResponder(state: state, logger: logger),
            server: .http1(configuration: .init(additionalChannelHandlers: [FaultChannelHandler()])),
            configuration: .init(address: .hostname(host, port: port), serverName: "fal-emulator"),
            onServerRunning: { channel in
                let boundPort = channel.localAddress?.port ?? port
                let printableHost = host.contains(":") ? "[\(host)]" : host
                let url = URL(string: "http://\(printableHost):\(boundPort)")!
                await state.setBaseURL(url)
                await onListening(url)
            },
            logger: logger
        )
    }

    /// Runs the emulator on a free loopback port while `body` runs, then shuts it down.
    public func withRunning<T: Sendable>(_ body: @Sendable (URL) async throws -> T) async throws -> T {
        let (listening, continuation) = AsyncStream.makeStream(of: URL.self)
        let application = makeApplication(onListening: { url in
            continuation.yield(url)
            continuation.finish()
        })
        let serviceGroup = ServiceGroup(
            configuration: .init(services: [application], gracefulShutdownSignals: [], logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { continuation.finish() }
                try await serviceGroup.run()
            }
            var iterator = listening.makeAsyncIterator()
            guard let url = await iterator.next() else {
                try await group.waitForAll()
                throw EmulatorStartError()
            }
            do {
                let value = try await body(url)
                await state.shutDownWebhooks()
                await serviceGroup.triggerGracefulShutdown()
                try await group.waitForAll()
                return value
            } catch {
                await state.shutDownWebhooks()
                await serviceGroup.triggerGracefulShutdown()
                try? await group.waitForAll()
                throw error
            }
        }
    }
}

/// The emulator stopped before it was listening.
public struct EmulatorStartError: Error, CustomStringConvertible {
    public var description: String { "the fal emulator stopped before it was listening" }
}
