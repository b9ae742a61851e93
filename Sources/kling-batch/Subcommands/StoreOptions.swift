import ArgumentParser
import FalClient
import Foundation
import JobStore
import Logging
import Runner

/// Where the settings come from and which store: every command that touches the store takes these, and only
/// these, unless it needs more (the groups below). Flags win over `KLING_BATCH_*`, which win over the config file.
struct StoreOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Config file (env KLING_BATCH_CONFIG; default /etc/kling-batch/config.yaml when it exists).", valueName: "path"))
    var config: String?

    @Option(name: .customLong("state-dir"), help: ArgumentHelp("Folder of the job database and lock (default $STATE_DIRECTORY, $XDG_STATE_HOME/kling-batch or ~/.local/state/kling-batch).", valueName: "dir"))
    var stateDir: String?

    @Flag(help: "The simulated store (the state folder's simulate/ subfolder), which --simulate runs use; for run and daemon, also start fal's emulator in this process.")
    var simulate = false

    /// The config file and environment under these flags and `extra` (the other groups' flags).
    func layers(_ extra: [SettingKey: String] = [:]) throws -> ConfigurationLayers {
        do {
            return try ConfigurationLayers.load(
                flags: extra.merging([.stateDir: stateDir].compactMapValues { $0 }) { _, new in new }, explicitFile: config,
                processEnvironment: ProcessInfo.processInfo.environment)
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
    }

    /// The effective, checked settings (the simulated store's, with --simulate).
    func settings(_ extra: [SettingKey: String] = [:]) throws -> EffectiveSettings {
        try Self.settings(from: layers(extra), simulate: simulate)
    }

    static func settings(from layers: ConfigurationLayers, simulate: Bool) throws -> EffectiveSettings {
        do {
            var settings = try EffectiveSettings(layers, processEnvironment: ProcessInfo.processInfo.environment)
            if simulate { settings.simulate() }
            return settings
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
    }

    /// The store, which must exist already: a typo in --state-dir should not look like an empty store, and a store
    /// that vanished must not be replaced by an empty one.
    ///
    /// When nothing chose a fal URL and the store's runner sends to a local emulator (`--fal-url`, a `--simulate`
    /// daemon's), that one is used, so `cancel` reaches the fal that holds the requests without `--fal-url`
    /// repeated; never with a real key.
    func openStore(_ extra: [SettingKey: String] = [:]) throws -> (JobStore, EffectiveSettings) {
        var settings = try settings(extra)
        let store = try JobStore.open(directory: settings.runner.stateDirectory, purpose: simulate ? .simulated : nil, mode: .existing)
        settings.useStoredEmulator(try store.falBase())
        return (store, settings)
    }
}

/// Which fal, and its key: for commands that call fal (run, daemon, cancel).
struct FalOptions: ParsableArguments {
    @Option(name: .customLong("fal-url"), help: ArgumentHelp("Send every fal call (queue, storage, listing) to this base URL, e.g. an emulator.", valueName: "url"))
    var falURL: String?

    @Option(name: .customLong("key-file"), help: ArgumentHelp("Read the fal key from this file (else FAL_KEY, FAL_KEY_ID+FAL_KEY_SECRET, or $CREDENTIALS_DIRECTORY/fal-key).", valueName: "path"))
    var keyFile: String?

    var flags: [SettingKey: String] { [.falURL: falURL, .keyFile: keyFile].compactMapValues { $0 } }

    /// The key, or a usage error that says where a key may come from.
    static func key(_ settings: EffectiveSettings) throws -> FalKey {
        do {
            return try settings.resolveKey()
        } catch let error as ConfigurationError {
            throw ValidationError(error.description + (settings.endpoints == .production ? "; or try --simulate to run against the built-in emulator" : ""))
        }
    }
}

/// The output tree: for commands that write videos or manifests (run, daemon, cancel, rerun).
struct OutputTreeOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Output root for videos and manifests (default ./out; cancel and rerun default to the one the last runner on this store wrote to).", valueName: "dir"))
    var out: String?

    var flags: [SettingKey: String] { [.out: out].compactMapValues { $0 } }
}

/// How much runs at once and what it may spend: for the runners (run, daemon).
struct RunnerOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The jobs folder (default ./jobs).", valueName: "dir"))
    var jobs: String?

    @Option(help: ArgumentHelp("How long a file written into the jobs folder must keep its size and mtime before it is read (default 2s).", valueName: "duration"))
    var settle: String?

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

    @Option(name: .customLong("give-up-after"), help: ArgumentHelp("run --once: how long fal may stay unreachable before the run exits with code 5, its jobs left for the next run (default 30m; 0: never).", valueName: "duration"))
    var giveUpAfter: String?

    @Option(name: .customLong("output-lifetime"), help: ArgumentHelp("How long fal keeps each result video, for a free re-download (default 7d).", valueName: "duration"))
    var outputLifetime: String?

    @Option(name: .customLong("queue-priority"), help: ArgumentHelp("normal or low: low lets bulk work yield to interactive use at fal (default: fal's, normal).", valueName: "priority"))
    var queuePriority: String?

    @Option(name: .customLong("start-timeout"), help: ArgumentHelp("fal fails a request not started within this long, unbilled (default: none).", valueName: "duration"))
    var startTimeout: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (default info).")
    var logLevel: String?

    @Option(name: .customLong("log-format"), help: "text, json or journal (default: journal under systemd, else text).")
    var logFormat: String?

    var flags: [SettingKey: String] {
        let values: [SettingKey: String?] = [
            .jobs: jobs, .settle: settle, .concurrency: concurrency.map(String.init), .uploads: uploads.map(String.init), .downloads: downloads.map(String.init),
            .maxAttempts: maxAttempts.map(String.init), .maxSpendPerDay: maxSpendPerDay, .maxSpendPerBatch: maxSpendPerBatch,
            .reconcileGrace: reconcileGrace, .reconcileInterval: reconcileInterval, .minFreeSpace: minFreeSpace, .localRecheck: localRecheck,
            .giveUpAfter: giveUpAfter, .logLevel: logLevel, .logFormat: logFormat,
            .outputLifetime: outputLifetime, .queuePriority: queuePriority, .startTimeout: startTimeout,
        ]
        return values.compactMapValues { $0 }
    }

    func validate() throws {
        for (name, value) in [("--concurrency", concurrency), ("--uploads", uploads), ("--downloads", downloads), ("--max-attempts", maxAttempts)] {
            if let value, value < 1 { throw ValidationError("\(name) must be at least 1, got \(value)") }
        }
    }

    /// A logger as the settings ask: level and format (text, JSON, or journald's).
    static func logger(_ settings: EffectiveSettings, label: String = "kling-batch") -> Logger {
        let format = settings.logFormat.flatMap(KlingLogHandler.Format.init(rawValue:)) ?? KlingLogHandler.defaultFormat()
        let level = settings.logLevel
        var logger = Logger(label: label) { label in KlingLogHandler(label: label, level: level, format: format) }
        logger.logLevel = level
        return logger
    }
}
