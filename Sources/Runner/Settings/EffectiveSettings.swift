import FalClient
import Foundation
import JobStore
import KlingCore
import Logging

/// Every setting resolved from the layers and checked, ready to run with.
public struct EffectiveSettings: Sendable {
    public var runner: RunnerConfiguration
    public var jobsDirectory: String
    /// Whether the state folder is the default one (no flag, variable, config key or `$STATE_DIRECTORY` chose it).
    public var stateDirectoryIsDefault: Bool
    public var endpoints: FalEndpoints
    /// Whether a flag, the environment or the config file chose the fal URL (else the store's runner may).
    public var falURLGiven = false
    /// Whether the fal URL is a local emulator's that the store's runner recorded (`useStoredEmulator`).
    public private(set) var emulatorFromStore = false

    /// Points operator commands at the emulator the store's runner sends to (`--fal-url`, `--simulate`), when
    /// nothing else chose a fal URL. Only a loopback URL is taken, and only with the emulator's own key: a store
    /// file can be copied or edited, and must never steer the real key anywhere. Returns whether it was taken.
    @discardableResult
    public mutating func useStoredEmulator(_ recorded: String?) -> Bool {
        guard !falURLGiven, let recorded, let url = FalEndpoints.parseBaseURL(recorded),
              let host = url.host, ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host) else { return false }
        endpoints = FalEndpoints(baseURL: url)
        emulatorFromStore = true
        return true
    }
    public var keyFile: String?
    /// Where `/metrics` and `/healthz` listen; nil: not served.
    public var httpAddress: (host: String, port: Int)?
    public var logLevel: Logger.Level
    public var logFormat: String?

    /// Resolves and checks every setting; the first bad one is reported with where it came from.
    public init(_ layers: ConfigurationLayers, processEnvironment: [String: String], currentDirectory: String = FileManager.default.currentDirectoryPath) throws {
        let read = SettingReader(layers: layers, currentDirectory: currentDirectory)
        let chosen = read.path(.stateDir) ?? processEnvironment["STATE_DIRECTORY"].map { String($0.split(separator: ":").first ?? "") }
        stateDirectoryIsDefault = chosen == nil
        guard let out = read.path(.out), let jobs = read.path(.jobs) else { throw ConfigurationError("out and jobs_dir must be set") }
        runner = try Self.runner(read, state: chosen ?? Self.defaultStateDirectory(processEnvironment), out: out)
        jobsDirectory = jobs
        if let value = read.text(.falURL) {
            guard let url = FalEndpoints.parseBaseURL(value.text) else { throw ConfigurationError("\(value.origin) must be an http(s) URL, got '\(value.text)'") }
            endpoints = FalEndpoints(baseURL: url)
            falURLGiven = true
        } else {
            endpoints = .production
        }
        keyFile = read.path(.keyFile)
        if let value = read.text(.http) {
            guard let address = Self.parseAddress(value.text) else {
                throw ConfigurationError("\(value.origin) must be HOST:PORT such as 127.0.0.1:9464, got '\(value.text)'")
            }
            httpAddress = address
        }
        let level = try read.required(.logLevel)
        guard let parsedLevel = Logger.Level(rawValue: level.text) else {
            throw ConfigurationError("\(level.origin) must be one of trace, debug, info, notice, warning, error, critical; got '\(level.text)'")
        }
        logLevel = parsedLevel
        if let format = read.text(.logFormat) {
            guard KlingLogHandler.Format(rawValue: format.text) != nil else { throw ConfigurationError("\(format.origin) must be text, json or journal, got '\(format.text)'") }
            logFormat = format.text
        }
    }

    /// The runner's own settings.
    private static func runner(_ read: SettingReader, state: String, out: String) throws -> RunnerConfiguration {
        var runner = RunnerConfiguration(stateDirectory: state, outputDirectory: out)
        runner.concurrency = try read.integer(.concurrency)
        runner.uploadConcurrency = try read.integer(.uploads)
        runner.downloadConcurrency = try read.integer(.downloads)
        runner.retry.maxAttempts = try read.integer(.maxAttempts)
        runner.reconcileGrace = try read.duration(.reconcileGrace)
        runner.reconcileInterval = try read.duration(.reconcileInterval)
        runner.polling.first = try read.duration(.pollFirst)
        runner.polling.maxInQueue = try read.duration(.pollMaxInQueue)
        runner.polling.maxInProgress = try read.duration(.pollMaxInProgress)
        runner.settle = try read.duration(.settle)
        runner.rescanInterval = try read.duration(.rescanInterval, within: .milliseconds(100)...(.seconds(86_400)))
        runner.localRecheck = try read.duration(.localRecheck, within: .milliseconds(10)...(.seconds(30)))
        runner.minimumFreeStateBytes = try read.bytes(.minFreeSpace)
        runner.giveUpAfter = try read.duration(.giveUpAfter)
        runner.prices = try read.prices()
        runner.submitOptions = try read.submitOptions()
        runner.budget = SpendLimits(perDay: try read.dollars(.maxSpendPerDay), perBatch: try read.dollars(.maxSpendPerBatch))
        if let notify = read.text(.notify) { runner.notify = try NotificationTarget.parseList(notify.text, origin: notify.origin) }
        try read.hooks(into: &runner)
        runner.notifyRetry = try read.duration(.notifyRetry, within: .milliseconds(10)...(.seconds(600)))
        runner.stallAfter = try read.duration(.stallAfter, within: .seconds(1)...(.seconds(7 * 86_400)))
        runner.webhookURL = try read.url(.webhookURL)
        runner.webhookKeysURL = try read.url(.webhookKeysURL)
        if let url = runner.webhookURL, ["/metrics", "/healthz"].contains(url.path) || url.path.isEmpty || url.path == "/" {
            throw ConfigurationError("\(read.text(.webhookURL)!.origin) needs a path of its own, such as https://host/fal/webhook, got '\(url.absoluteString)'")
        }
        return runner
    }

    /// The prices alone, for commands that plan without a store.
    public static func prices(_ layers: ConfigurationLayers) throws -> PriceList {
        try SettingReader(layers: layers, currentDirectory: FileManager.default.currentDirectoryPath).prices()
    }

    /// `$XDG_STATE_HOME/kling-batch`, or `$HOME/.local/state/kling-batch`.
    public static func defaultStateDirectory(_ environment: [String: String]) -> String {
        if let state = environment["XDG_STATE_HOME"], state.hasPrefix("/") { return state + "/kling-batch" }
        return (environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()) + "/.local/state/kling-batch"
    }

    /// Settings for a `--simulate` run: its own store (the default folder's `simulate/`, unless a folder was
    /// chosen), made for simulated runs only, so emulator URLs and pretend spend never reach a real store.
    public mutating func simulate() {
        if stateDirectoryIsDefault { runner.stateDirectory += "/simulate" }
        runner.storePurpose = .simulated
    }

    /// `host:port`, `:port` (loopback) or `[::1]:port`.
    public static func parseAddress(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "127.0.0.1" : host, port)
    }

    /// Paths as people write them: `~/x`, relative to the current folder, or absolute.
    public static func absolute(_ path: String, in folder: String = FileManager.default.currentDirectoryPath) -> String {
        let home = ProcessInfo.processInfo.environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        let expanded = path.hasPrefix("~/") ? home + path.dropFirst(1) : path
        return expanded.hasPrefix("/") ? expanded : (folder as NSString).appendingPathComponent(expanded)
    }
}

/// Durations as people write them: `90s`, `30m`, `2h`, `500ms`, or plain seconds.
public enum DurationText {
    public static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            guard let value = Double(trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), value >= 0, value.isFinite else { return nil }
            return .milliseconds(Int64(value * scale * 1000))
        }
        guard let seconds = Double(trimmed), seconds >= 0, seconds.isFinite else { return nil }
        return .milliseconds(Int64(seconds * 1000))
    }
}

extension EffectiveSettings {
    /// The key: the key file, FAL_KEY, FAL_KEY_ID+FAL_KEY_SECRET, then the systemd credential. A local emulator needs none.
    public func resolveKey(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> FalKey {
        // A URL learnt from the store, not chosen by the operator, never gets a real key (see `useStoredEmulator`).
        if emulatorFromStore { return FalKey("local-emulator", source: "default for the store's local emulator")! }
        if let keyFile { return try FalKey.read(file: keyFile) }
        if let key = FalKey.fromEnvironment(environment) { return key }
        if let directory = environment["CREDENTIALS_DIRECTORY"], FileManager.default.fileExists(atPath: directory + "/fal-key") {
            return try FalKey.read(file: directory + "/fal-key")
        }
        if let host = endpoints.queue.host, ["127.0.0.1", "localhost", "::1"].contains(host) {
            return FalKey("local-emulator", source: "default for a local emulator")!
        }
        throw ConfigurationError(
            "no fal key: set FAL_KEY (or FAL_KEY_ID and FAL_KEY_SECRET), pass --key-file, give key_file in the config, or use the systemd credential fal-key")
    }
}
