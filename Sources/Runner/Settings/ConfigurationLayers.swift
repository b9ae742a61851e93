import Foundation
import KlingSpec
import Yams

/// The three places settings come from, and which one wins: flags, then the environment, then the file.
public struct ConfigurationLayers: Sendable {
    /// Where an effective value came from, for `kling-batch config` and for error messages.
    public enum Source: Sendable, Equatable, CustomStringConvertible {
        case flag
        case environment
        case file(String)
        case defaultValue

        public var description: String {
            switch self {
            case .flag: "flag"
            case .environment: "environment"
            case .file(let path): path
            case .defaultValue: "default"
            }
        }
    }

    /// A value with its origin.
    public struct Value: Sendable, Equatable {
        public var text: String
        public var source: Source
        /// How to name it in an error: the flag, the variable or `file: key`.
        public var origin: String
    }

    public var flags: [SettingKey: String]
    public var environment: [SettingKey: String]
    public var file: [SettingKey: String]
    /// The config file read, if any.
    public var filePath: String?

    public init(flags: [SettingKey: String] = [:], environment: [SettingKey: String] = [:], file: [SettingKey: String] = [:], filePath: String? = nil) {
        self.flags = flags
        self.environment = environment
        self.file = file
        self.filePath = filePath
    }

    /// The default config file, read when it exists and no other is named.
    public static let systemFile = "/etc/kling-batch/config.yaml"

    /// Reads the layers: `explicitFile` (`--config`) or `KLING_BATCH_CONFIG` must exist; the system file may not.
    public static func load(flags: [SettingKey: String], explicitFile: String?, processEnvironment: [String: String]) throws -> ConfigurationLayers {
        var layers = ConfigurationLayers(flags: flags)
        for key in SettingKey.allCases {
            if let value = processEnvironment[key.environmentName], !value.isEmpty { layers.environment[key] = value }
        }
        if let path = explicitFile ?? processEnvironment["KLING_BATCH_CONFIG"] {
            layers.file = try readFile(path)
            layers.filePath = path
        } else if FileManager.default.fileExists(atPath: systemFile) {
            layers.file = try readFile(systemFile)
            layers.filePath = systemFile
        }
        return layers
    }

    /// The same layers with the file read again (SIGHUP): flags and environment are fixed for the process's life.
    public func reloaded() throws -> ConfigurationLayers {
        var copy = self
        if let filePath { copy.file = try Self.readFile(filePath) }
        return copy
    }

    /// The effective value of `key`, or nil when no layer sets it and it has no default.
    public func value(_ key: SettingKey) -> Value? {
        if let text = flags[key] { return Value(text: text, source: .flag, origin: key.flag) }
        if let text = environment[key] { return Value(text: text, source: .environment, origin: key.environmentName) }
        if let text = file[key] { return Value(text: text, source: .file(filePath ?? "config"), origin: "\(filePath ?? "config"): \(key.rawValue)") }
        if let text = key.defaultValue { return Value(text: text, source: .defaultValue, origin: "default \(key.rawValue)") }
        return nil
    }

    /// Parses a config file: a YAML mapping of setting names to scalars. Unknown names are errors that suggest the
    /// closest known one, because a misspelt `max_spend_per_day` silently ignored would spend money.
    public static func readFile(_ path: String) throws -> [SettingKey: String] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError("\(path): cannot read the config file (\((error as NSError).localizedDescription))")
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw ConfigurationError("\(path): not valid YAML: \(error)")
        }
        guard let node else { return [:] }
        guard let mapping = node.mapping else { throw ConfigurationError("\(path): expected a mapping of settings such as `concurrency: 4`") }
        var values: [SettingKey: String] = [:]
        for (keyNode, valueNode) in mapping {
            let name = keyNode.string ?? "\(keyNode)"
            guard let key = SettingKey(rawValue: name.replacingOccurrences(of: "-", with: "_")) else {
                let known = SettingKey.allCases.map(\.rawValue)
                let hint = KeySuggestion.suggest(name, among: known).map { "; did you mean `\($0)`?" } ?? ""
                throw ConfigurationError("\(path): \(name): unknown setting\(hint) (known: \(known.joined(separator: ", ")))")
            }
            if key == .prices, let entries = valueNode.mapping {
                values[key] = try pricesText(entries, path: path)
                continue
            }
            if key == .hooks, case .mapping = valueNode {
                values[key] = NotificationTarget.jsonText(of: valueNode)
                continue
            }
            if key == .notify {
                // The one list among the settings: kept as JSON, the form KLING_BATCH_NOTIFY takes too.
                values[key] = NotificationTarget.jsonText(of: valueNode)
                continue
            }
            guard let scalar = valueNode.scalar else { throw ConfigurationError("\(path): \(name): expected a single value, not a list or mapping") }
            if scalar.tag == Tag(.null) || (scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)) { continue }
            values[key] = scalar.string
        }
        return values
    }
}

extension ConfigurationLayers {
    /// `prices:` is the one mapping among the settings (endpoint → dollars per second); it becomes the same
    /// `endpoint=dollars,…` text that the flag and the environment take, so one parser reads all three.
    static func pricesText(_ entries: Node.Mapping, path: String) throws -> String {
        try entries.map { endpointNode, priceNode in
            guard let endpoint = endpointNode.string, let price = priceNode.scalar?.string else {
                throw ConfigurationError("\(path): prices: expected `endpoint: dollars per second` entries, such as `fal-ai/kling-video/o1/reference-to-video: 0.112`")
            }
            return "\(endpoint)=\(price)"
        }.joined(separator: ",")
    }
}

/// A setting that cannot be used, named by where it came from.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
