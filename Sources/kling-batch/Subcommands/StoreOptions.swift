import ArgumentParser
import Foundation
import JobStore
import Runner

/// For commands that only read or change the store: where it is (flag, env, config file).
struct StoreOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Config file (env KLING_BATCH_CONFIG; default /etc/kling-batch/config.yaml when it exists).", valueName: "path"))
    var config: String?

    @Option(name: .customLong("state-dir"), help: ArgumentHelp("Folder of the job database (default $STATE_DIRECTORY, $XDG_STATE_HOME/kling-batch or ~/.local/state/kling-batch).", valueName: "dir"))
    var stateDir: String?

    @Flag(help: "Use the store of `run --once --simulate` (the state folder's simulate/ subfolder) instead of the real one.")
    var simulate = false

    func settings() throws -> EffectiveSettings {
        do {
            let layers = try ConfigurationLayers.load(flags: [.stateDir: stateDir].compactMapValues { $0 }, explicitFile: config, processEnvironment: ProcessInfo.processInfo.environment)
            var settings = try EffectiveSettings(layers, processEnvironment: ProcessInfo.processInfo.environment)
            if simulate { settings.simulate() }
            return settings
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
    }

    /// The store, which must exist already: a typo in --state-dir should not look like an empty store, and a store
    /// that vanished must not be replaced by an empty one.
    func openStore() throws -> (JobStore, EffectiveSettings) {
        let settings = try settings()
        return (try JobStore.open(directory: settings.runner.stateDirectory, purpose: simulate ? .simulated : nil, mode: .existing), settings)
    }
}

/// Ages and times as an operator reads them: `42s`, `7m`, `3h`, `2d`.
enum Age {
    static func text(since date: Date, now: Date = Date()) -> String {
        let seconds = max(0, Int(now.timeIntervalSince(date)))
        switch seconds {
        case ..<60: return "\(seconds)s"
        case ..<3600: return "\(seconds / 60)m"
        case ..<86400: return "\(seconds / 3600)h"
        default: return "\(seconds / 86400)d"
        }
    }
}
