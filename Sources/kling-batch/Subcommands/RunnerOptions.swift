import ArgumentParser
import FalClient
import Foundation
import KlingCore
import Logging
import Runner

/// The options every command that touches the store shares: where things live, how much runs at once, which fal.
///
/// Each flag is one `SettingKey`; flags win over `KLING_BATCH_*` variables, which win over the config file.
struct RunnerOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Config file (env KLING_BATCH_CONFIG; default /etc/kling-batch/config.yaml when it exists).", valueName: "path"))
    var config: String?

    @Option(help: ArgumentHelp("The jobs folder (default ./jobs).", valueName: "dir"))
    var jobs: String?

    @Option(help: ArgumentHelp("Output root for videos and manifests (default ./out).", valueName: "dir"))
    var out: String?

    @Option(name: .customLong("state-dir"), help: ArgumentHelp("Folder of the job database and lock (default $STATE_DIRECTORY or ~/.local/state/kling-batch).", valueName: "dir"))
    var stateDir: String?

    @Option(help: "Requests at fal at once (default 4).")
    var concurrency: Int?

    @Option(help: "Image uploads at once (default 4).")
    var uploads: Int?

    @Option(help: "Video downloads at once (default 4).")
    var downloads: Int?

    @Option(name: .customLong("max-attempts"), help: "Submissions per job before it fails (default 5).")
    var maxAttempts: Int?

    @Option(name: .customLong("max-spend-per-day"), help: ArgumentHelp("Dollars that may be committed per UTC day; jobs beyond it wait as held.", valueName: "dollars"))
    var maxSpendPerDay: String?

    @Option(name: .customLong("max-spend-per-batch"), help: ArgumentHelp("Dollars that may be committed per batch; jobs beyond it wait as held.", valueName: "dollars"))
    var maxSpendPerBatch: String?

    @Option(name: .customLong("reconcile-grace"), help: ArgumentHelp("How long to look for a submit whose answer was lost before submitting again (default 30m).", valueName: "duration"))
    var reconcileGrace: String?

    @Option(name: .customLong("reconcile-interval"), help: ArgumentHelp("How often fal's request listing is read while reconciling (default 10s).", valueName: "duration"))
    var reconcileInterval: String?

    @Option(name: .customLong("min-free-space"), help: ArgumentHelp("Free space the state folder must keep; below it nothing new is submitted (default 64MB; 0: no floor).", valueName: "size"))
    var minFreeSpace: String?

    @Option(name: .customLong("local-recheck"), help: ArgumentHelp("While a full or read-only disk has paused the runner, how often it checks again (default 10s, at most 30s).", valueName: "duration"))
    var localRecheck: String?

    @Option(name: .customLong("fal-url"), help: ArgumentHelp("Send every fal call (queue, storage, listing) to this base URL, e.g. an emulator.", valueName: "url"))
    var falURL: String?

    @Option(name: .customLong("key-file"), help: ArgumentHelp("Read the fal key from this file (else FAL_KEY, FAL_KEY_ID+FAL_KEY_SECRET, or $CREDENTIALS_DIRECTORY/fal-key).", valueName: "path"))
    var keyFile: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (default info).")
    var logLevel: String?

    @Option(name: .customLong("log-format"), help: "text, json or journal (default: journal under systemd, else text).")
    var logFormat: String?

    /// The flags given, by setting.
    var flags: [SettingKey: String] {
        var flags: [SettingKey: String] = [:]
        flags[.jobs] = jobs
        flags[.out] = out
        flags[.stateDir] = stateDir
        flags[.concurrency] = concurrency.map(String.init)
        flags[.uploads] = uploads.map(String.init)
        flags[.downloads] = downloads.map(String.init)
        flags[.maxAttempts] = maxAttempts.map(String.init)
        flags[.maxSpendPerDay] = maxSpendPerDay
        flags[.maxSpendPerBatch] = maxSpendPerBatch
        flags[.reconcileGrace] = reconcileGrace
        flags[.reconcileInterval] = reconcileInterval
        flags[.minFreeSpace] = minFreeSpace
        flags[.localRecheck] = localRecheck
        flags[.falURL] = falURL
        flags[.keyFile] = keyFile
        flags[.logLevel] = logLevel
        flags[.logFormat] = logFormat
        return flags
    }

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    func validate() throws {
        for (name, value) in [("--concurrency", concurrency), ("--uploads", uploads), ("--downloads", downloads), ("--max-attempts", maxAttempts)] {
            if let value, value < 1 { throw ValidationError("\(name) must be at least 1, got \(value)") }
        }
    }

    /// Reads the config file and environment under these flags (plus `extra`, the command's own settings).
    func layers(extra: [SettingKey: String] = [:]) throws -> ConfigurationLayers {
        do {
            return try ConfigurationLayers.load(flags: flags.merging(extra) { _, new in new }, explicitFile: config, processEnvironment: environment)
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
    }

    /// The effective, checked settings.
    func settings(extra: [SettingKey: String] = [:]) throws -> EffectiveSettings {
        try Self.settings(from: layers(extra: extra))
    }

    static func settings(from layers: ConfigurationLayers) throws -> EffectiveSettings {
        do {
            return try EffectiveSettings(layers, processEnvironment: ProcessInfo.processInfo.environment)
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
    }

    /// The key, or a usage error that says where a key may come from.
    static func key(_ settings: EffectiveSettings) throws -> FalKey {
        do {
            return try settings.resolveKey()
        } catch let error as ConfigurationError {
            throw ValidationError(error.description + (settings.endpoints == .production ? "; or try --simulate to run against the built-in emulator" : ""))
        }
    }

    static func logger(_ settings: EffectiveSettings, label: String = "kling-batch") -> Logger {
        let format = settings.logFormat.flatMap(KlingLogHandler.Format.init(rawValue:)) ?? KlingLogHandler.defaultFormat()
        let level = settings.logLevel
        var logger = Logger(label: label) { label in KlingLogHandler(label: label, level: level, format: format) }
        logger.logLevel = level
        return logger
    }
}
