import FalClient
import FalEmulator
import Foundation
import Logging
import Runner

/// `--simulate`: fal's emulator, started in this process, in place of fal. No key and no network are used, and
/// the run keeps its own store (see `EffectiveSettings.simulate`).
enum Simulation {
    /// Runs `body` with settings pointed at an emulator started here when `simulate`, else as they are.
    static func withFal<T: Sendable>(
        _ settings: EffectiveSettings, simulate: Bool, logger: Logger, _ body: @Sendable (EffectiveSettings) async throws -> T
    ) async throws -> T {
        guard simulate else { return try await body(settings) }
        var emulatorLogger = logger
        emulatorLogger.logLevel = .warning
        var knobs = EmulatorConfiguration()
        knobs.queueSeconds = 0.5
        knobs.runSeconds = 2
        knobs.runnerCapacity = 8
        let emulator = FalEmulator(configuration: knobs, logger: emulatorLogger)
        return try await emulator.withRunning { url in
            logger.notice("simulating: fal's emulator is listening at \(url.absoluteString); no key or network is used; store \(settings.runner.stateDirectory)")
            var local = settings
            local.endpoints = FalEndpoints(baseURL: url)
            return try await body(local)
        }
    }

    /// A client for the settings' fal, with its key; shut down after `body`.
    static func withClient<T: Sendable>(_ settings: EffectiveSettings, logger: Logger, _ body: @Sendable (FalClient) async throws -> T) async throws -> T {
        let key = try FalOptions.key(settings)
        let http = FalClient.makeHTTPClient()
        let client = FalClient(http: http, endpoints: settings.endpoints, key: key, logger: logger)
        do {
            let value = try await body(client)
            try await http.shutdown()
            return value
        } catch {
            try? await http.shutdown()
            throw error
        }
    }
}
