import FalClient
import Foundation
import KlingCore

/// Reads one setting's effective value as a typed value, with an error that names where a bad value came from.
/// One reader for every kind of value, so `EffectiveSettings` is a list of settings rather than of parsers.
struct SettingReader {
    let layers: ConfigurationLayers
    let currentDirectory: String

    func text(_ key: SettingKey) -> ConfigurationLayers.Value? { layers.value(key) }

    /// A path as people write it, made absolute.
    func path(_ key: SettingKey) -> String? { text(key).map { EffectiveSettings.absolute($0.text, in: currentDirectory) } }

    /// A setting that must have a value (every one read this way has a default).
    func required(_ key: SettingKey) throws -> ConfigurationLayers.Value {
        guard let value = text(key) else { throw ConfigurationError("\(key.rawValue) must be set (\(key.flag), \(key.environmentName), or in the config file)") }
        return value
    }

    func integer(_ key: SettingKey, minimum: Int = 1) throws -> Int {
        let value = try required(key)
        guard let number = Int(value.text.trimmingCharacters(in: .whitespaces)), number >= minimum else {
            throw ConfigurationError("\(value.origin) must be a whole number of at least \(minimum), got '\(value.text)'")
        }
        return number
    }

    func duration(_ key: SettingKey, within range: ClosedRange<Duration>? = nil) throws -> Duration {
        let value = try required(key)
        guard let parsed = DurationText.parse(value.text) else {
            throw ConfigurationError("\(value.origin) must be a duration such as 500ms, 10s, 30m or 2h, got '\(value.text)'")
        }
        if let range, !range.contains(parsed) {
            throw ConfigurationError("\(value.origin) must be between \(range.lowerBound.formattedSeconds) and \(range.upperBound.formattedSeconds), got '\(value.text)'")
        }
        return parsed
    }

    /// An http(s) URL with a host, or nil when unset.
    func url(_ key: SettingKey) throws -> URL? {
        guard let value = text(key), !value.text.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
        guard let url = URL(string: value.text.trimmingCharacters(in: .whitespaces)), ["http", "https"].contains(url.scheme?.lowercased() ?? ""),
            url.host?.isEmpty == false
        else { throw ConfigurationError("\(value.origin) must be an http(s) URL, got '\(value.text)'") }
        return url
    }

    func dollars(_ key: SettingKey) throws -> USD? {
        guard let value = text(key) else { return nil }
        guard let amount = USD(parsing: value.text.replacingOccurrences(of: "$", with: "")), amount.micros >= 0 else {
            throw ConfigurationError("\(value.origin) must be an amount in dollars such as 25 or 0.112, got '\(value.text)'")
        }
        return amount
    }

    func bytes(_ key: SettingKey) throws -> Int64 {
        let value = try required(key)
        guard let bytes = DiskSpace.parseSize(value.text) else {
            throw ConfigurationError("\(value.origin) must be a size such as 64MB, 1GB or 0, got '\(value.text)'")
        }
        return bytes
    }

    /// fal's published prices, `price_per_second` for the Pro endpoint, then `prices` over both.
    func prices() throws -> PriceList {
        var list = PriceList.published
        if let pro = try dollars(.pricePerSecond) {
            guard pro.micros > 0, pro <= PriceList.ceiling else {
                throw ConfigurationError("\(text(.pricePerSecond)!.origin) must be more than 0 and at most \(PriceList.ceiling.exactDescription) per second")
            }
            list = list.merging([PriceList.klingO1Pro: pro])
        }
        guard let value = text(.prices) else { return list }
        switch PriceList.parse(value.text) {
        case .success(let given): return list.merging(given)
        case .failure(let error): throw ConfigurationError("\(value.origin): \(error) (expected endpoint=dollars per second, comma-separated)")
        }
    }

    /// The submit headers fal takes: output lifetime, queue priority and start timeout.
    func submitOptions() throws -> SubmitOptions {
        var options = SubmitOptions()
        if text(.outputLifetime) != nil { options.outputLifetime = try duration(.outputLifetime, within: .seconds(60)...(.seconds(365 * 86_400))) }
        if text(.startTimeout) != nil { options.startTimeout = try duration(.startTimeout, within: .seconds(1)...(.seconds(86_400))) }
        if let value = text(.queuePriority) {
            guard let priority = SubmitOptions.Priority(rawValue: value.text.lowercased()) else {
                throw ConfigurationError("\(value.origin) must be normal or low, got '\(value.text)'")
            }
            options.priority = priority
        }
        return options
    }
}

extension SettingReader {
    /// `on_complete`, `hooks`, and how they run: each command split into words (or given to /bin/sh -c).
    func hooks(into runner: inout RunnerConfiguration) throws {
        let shell: Bool
        switch text(.onCompleteShell)?.text.lowercased() ?? "false" {
        case "true", "yes", "on", "1": shell = true
        case "false", "no", "off", "0": shell = false
        case let other: throw ConfigurationError("\(text(.onCompleteShell)?.origin ?? "on_complete_shell") must be true or false, got '\(other)'")
        }
        if let value = text(.onComplete), !value.text.trimmingCharacters(in: .whitespaces).isEmpty {
            runner.onComplete = try NotificationTarget.words(.string(value.text), shell: shell, origin: value.origin)
        }
        if let value = text(.hooks) {
            guard case .object(let named)? = try? JSONValue.parse(Data(value.text.utf8)) else {
                throw ConfigurationError("\(value.origin) must be a mapping of hook names to commands, such as `upload: rclone copyto ...`")
            }
            for (name, command) in named {
                guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }), name != "none", !name.isEmpty else {
                    throw ConfigurationError("\(value.origin): '\(name)' cannot be a hook's name (letters, digits, _ and -; not none)")
                }
                runner.hooks[name] = try NotificationTarget.words(command, shell: shell, origin: "\(value.origin).\(name)")
            }
        }
        runner.hookTimeout = try duration(.onCompleteTimeout, within: .seconds(1)...(.seconds(86_400)))
        runner.hookConcurrency = try integer(.onCompleteConcurrency)
        switch text(.statusStream)?.text.lowercased() ?? "true" {
        case "true", "yes", "on", "1": runner.statusStream = true
        case "false", "no", "off", "0": runner.statusStream = false
        case let other: throw ConfigurationError("\(text(.statusStream)?.origin ?? "status_stream") must be true or false, got '\(other)'")
        }
        if let value = text(.posters) {
            guard let posters = PosterSetting(parsing: value.text) else {
                throw ConfigurationError("\(value.origin) must be auto, off or the path of an ffmpeg program, got '\(value.text)'")
            }
            runner.posters = posters
        }
        runner.streamSilence = try duration(.streamSilence, within: .milliseconds(100)...(.seconds(3600)))
        runner.hookRetry = try duration(.onCompleteRetry, within: .milliseconds(10)...(.seconds(600)))
    }
}
