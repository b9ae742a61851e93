import ArgumentParser
import Foundation
import KlingCore
import Runner

/// `kling-batch config`: the effective configuration, each value with where it came from.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print the effective configuration and where each value came from (the key is never shown).",
        discussion: """
            Flags win over KLING_BATCH_* environment variables, which win over the config file \
            (--config, $KLING_BATCH_CONFIG, or /etc/kling-batch/config.yaml when it exists), which wins over \
            the defaults. The config file is a YAML mapping of the names shown here, e.g.

              concurrency: 8
              max_spend_per_day: 25
              jobs_dir: /srv/kling/jobs

            Examples:
              kling-batch config
              kling-batch config --config ./config.yaml --json
            """
    )

    @OptionGroup var store: StoreOptions
    @OptionGroup var fal: FalOptions
    @OptionGroup var outputTree: OutputTreeOptions
    @OptionGroup var runner: RunnerOptions
    @OptionGroup var output: OutputOptions

    /// A setting's value as shown: `notify` as its targets with each secret's fingerprint, never the secret.
    static func shown(_ key: SettingKey, _ text: String, _ settings: EffectiveSettings) -> String {
        guard key == .notify else { return text }
        let targets = settings.runner.notify
        return targets.isEmpty ? "-" : targets.enumerated().map { "[\($0.offset)] \($0.element.label)" }.joined(separator: "; ")
    }

    func run() throws {
        let layers = try store.layers(fal.flags.merging(outputTree.flags) { $1 }.merging(runner.flags) { $1 })
        let settings = try StoreOptions.settings(from: layers, simulate: store.simulate)
        let key: (source: String, fingerprint: String)? = (try? settings.resolveKey()).map { ($0.source, $0.fingerprint) }
        if output.json {
            var object: [String: JSONValue] = [:]
            for name in SettingKey.allCases {
                let value = layers.value(name)
                object[name.rawValue] = .object([
                    "value": value.map { .string(Self.shown(name, $0.text, settings)) } ?? .null, "source": .string(value?.source.description ?? "unset"),
                    "reloadable": .bool(name.isReloadable),
                ])
            }
            object["fal_key"] = key.map { .object(["source": .string($0.source), "fingerprint": .string($0.fingerprint)]) } ?? .null
            object["key_private"] = .bool(KeyPrivacy.isProtected)
            object["config_file"] = layers.filePath.map(JSONValue.string) ?? .null
            Console.json(.object(object))
            return
        }
        var table = TextTable([("SETTING", .left), ("VALUE", .left), ("SOURCE", .left)])
        for name in SettingKey.allCases {
            let value = layers.value(name)
            table.add([name.rawValue, value.map { Self.shown(name, $0.text, settings) } ?? "-", value.map { "\($0.source)" } ?? "unset"])
        }
        Console.out(table.render())
        Console.out("")
        Console.out("config file: \(layers.filePath ?? "none (\(ConfigurationLayers.systemFile) does not exist)")")
        Console.out("state folder: \(settings.runner.stateDirectory)")
        Console.out("fal: \(settings.endpoints)")
        if let key {
            Console.out("fal key: from \(key.source) (\(key.fingerprint)); the key itself is never printed")
            Console.out(KeyPrivacy.isProtected
                ? "key privacy: this process is non-dumpable; other processes of its user cannot read its environment or memory"
                : "key privacy: OFF (prctl refused); other processes of this user can read this process's environment")
        } else {
            Console.out("fal key: none found (FAL_KEY, FAL_KEY_ID+FAL_KEY_SECRET, key_file, or $CREDENTIALS_DIRECTORY/fal-key)")
        }
    }
}
