import ArgumentParser
import FalClient
import Foundation
import KlingCore
import Logging
import Runner

/// The options every command that runs jobs shares: where things live, how much runs at once, and which fal.
struct RunnerOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Output root for videos and manifests (env KLING_BATCH_OUT; default ./out).", valueName: "dir"))
    var out: String?

    @Option(name: .customLong("state-dir"), help: ArgumentHelp("Folder of the job database and lock (env KLING_BATCH_STATE_DIR; default ~/.local/state/kling-batch).", valueName: "dir"))
    var stateDir: String?

    @Option(help: "Requests at fal at once (default 4).")
    var concurrency: Int?

    @Option(help: "Image uploads at once (default 4).")
    var uploads: Int?

    @Option(help: "Video downloads at once (default 4).")
    var downloads: Int?

    @Option(name: .customLong("max-attempts"), help: "Submissions per job before it fails (default 5).")
    var maxAttempts: Int?

    @Option(name: .customLong("reconcile-grace"), help: ArgumentHelp("How long to look for a submit whose answer was lost before submitting again, e.g. 30m (default).", valueName: "duration"))
    var reconcileGrace: String?

    @Option(name: .customLong("reconcile-interval"), help: ArgumentHelp("How often fal's request listing is read while reconciling, e.g. 10s (default).", valueName: "duration"))
    var reconcileInterval: String?

    @Option(name: .customLong("fal-url"), help: ArgumentHelp("Send every fal call (queue, storage, listing) to this base URL, e.g. an emulator (env KLING_BATCH_FAL_URL).", valueName: "url"))
    var falURL: String?

    @Option(name: .customLong("key-file"), help: ArgumentHelp("Read the fal key from this file (else FAL_KEY, FAL_KEY_ID+FAL_KEY_SECRET, or $CREDENTIALS_DIRECTORY/fal-key).", valueName: "path"))
    var keyFile: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (default info).")
    var logLevel: String?

    @Option(name: .customLong("log-format"), help: "text, json or journal (default: journal under systemd, else text).")
    var logFormat: String?

    func validate() throws {
        for (name, value) in [("--concurrency", concurrency), ("--uploads", uploads), ("--downloads", downloads), ("--max-attempts", maxAttempts)] {
            if let value, value < 1 { throw ValidationError("\(name) must be at least 1, got \(value)") }
        }
        if let reconcileGrace, DurationText.parse(reconcileGrace) == nil {
            throw ValidationError("--reconcile-grace must be a duration such as 90s, 30m or 2h, got '\(reconcileGrace)'")
        }
        if let reconcileInterval, DurationText.parse(reconcileInterval) == nil {
            throw ValidationError("--reconcile-interval must be a duration such as 500ms or 10s, got '\(reconcileInterval)'")
        }
        if let falURL, FalEndpoints.parseBaseURL(falURL) == nil { throw ValidationError("--fal-url must be an http(s) URL, got '\(falURL)'") }
        if let logLevel, Logger.Level(rawValue: logLevel) == nil { throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical") }
        if let logFormat, KlingLogHandler.Format(rawValue: logFormat) == nil { throw ValidationError("--log-format must be text, json or journal") }
    }

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    func configuration() -> RunnerConfiguration {
        let env = environment
        let state = stateDir ?? env["KLING_BATCH_STATE_DIR"] ?? env["STATE_DIRECTORY"]
            ?? ((env["XDG_STATE_HOME"] ?? (NSHomeDirectory() + "/.local/state")) + "/kling-batch")
        var configuration = RunnerConfiguration(stateDirectory: Self.absolute(state), outputDirectory: Self.absolute(out ?? env["KLING_BATCH_OUT"] ?? "out"))
        if let concurrency { configuration.concurrency = concurrency }
        if let uploads { configuration.uploadConcurrency = uploads }
        if let downloads { configuration.downloadConcurrency = downloads }
        if let maxAttempts { configuration.retry.maxAttempts = maxAttempts }
        if let grace = reconcileGrace.flatMap(DurationText.parse) { configuration.reconcileGrace = grace }
        if let interval = reconcileInterval.flatMap(DurationText.parse) { configuration.reconcileInterval = interval }
        return configuration
    }

    /// The fal base URL: flag, then env, else fal's real hosts.
    var endpoints: FalEndpoints {
        if let text = falURL ?? environment["KLING_BATCH_FAL_URL"], let url = FalEndpoints.parseBaseURL(text) { return FalEndpoints(baseURL: url) }
        return .production
    }

    /// The key: --key-file, FAL_KEY, FAL_KEY_ID+FAL_KEY_SECRET, then the systemd credential. A local emulator needs none.
    func key(for endpoints: FalEndpoints) throws -> FalKey {
        if let keyFile { return try FalKey.read(file: keyFile) }
        if let key = FalKey.fromEnvironment(environment) { return key }
        if let directory = environment["CREDENTIALS_DIRECTORY"], FileManager.default.fileExists(atPath: directory + "/fal-key") {
            return try FalKey.read(file: directory + "/fal-key")
        }
        if let host = endpoints.queue.host, ["127.0.0.1", "localhost", "::1"].contains(host) {
            return FalKey("local-emulator", source: "default for a local emulator")!
        }
        throw ValidationError("no fal key: set FAL_KEY (or FAL_KEY_ID and FAL_KEY_SECRET), pass --key-file, or try --simulate to run against the built-in emulator")
    }

    func logger(label: String = "kling-batch") -> Logger {
        let level = logLevel.flatMap(Logger.Level.init(rawValue:)) ?? .info
        let format = logFormat.flatMap(KlingLogHandler.Format.init(rawValue:)) ?? KlingLogHandler.defaultFormat()
        var logger = Logger(label: label) { label in KlingLogHandler(label: label, level: level, format: format) }
        logger.logLevel = level
        return logger
    }

    static func absolute(_ path: String) -> String {
        let expanded = path.hasPrefix("~/") ? NSHomeDirectory() + path.dropFirst(1) : path
        return expanded.hasPrefix("/") ? expanded : FileManager.default.currentDirectoryPath + "/" + expanded
    }
}

/// Durations as people write them: `90s`, `30m`, `2h`, `500ms`, or plain seconds.
enum DurationText {
    static func parse(_ text: String) -> Duration? {
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
