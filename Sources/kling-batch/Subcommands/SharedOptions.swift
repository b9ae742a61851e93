import ArgumentParser
import Foundation
import KlingCore
import KlingSpec
import Runner

/// Options that decide how spec files are validated; shared by every command that reads specs.
struct SpecOptions: ParsableArguments {
    @Option(
        name: .customLong("allow-root"),
        help: ArgumentHelp("A folder that local images may also come from, besides each spec's own folder (repeatable).", valueName: "dir"))
    var allowedRoots: [String] = []

    @Option(help: ArgumentHelp(
        "The folder relative image paths start from (default: the spec's own folder; for a spec in a drop folder's accepted/ or rejected/, the drop folder it was dropped into).",
        valueName: "dir"))
    var base: String?

    @Option(help: ArgumentHelp("Price per second of video on fal-ai/kling-video/o1/reference-to-video, in dollars (default 0.112).", valueName: "dollars"))
    var rate: String?

    @Option(name: .customLong("price"), help: ArgumentHelp(
        "An endpoint's price per second of video (repeatable), e.g. fal-ai/kling-video/o1/standard/reference-to-video=0.084; an endpoint with no price counts at the highest known one.",
        valueName: "endpoint=dollars"))
    var prices: [String] = []

    /// The pricing flags as settings, for commands that merge them with the config file and the environment.
    var priceFlags: [SettingKey: String] {
        [.pricePerSecond: rate, .prices: prices.isEmpty ? nil : prices.joined(separator: ",")].compactMapValues { $0 }
    }

    func validate() throws {
        for root in allowedRoots where !root.hasPrefix("/") {
            throw ValidationError("--allow-root must be an absolute path, got '\(root)'")
        }
        if let rate, USD(parsing: rate) == nil { throw ValidationError("--rate must be an amount in dollars such as 0.112, got '\(rate)'") }
        for price in prices {
            if case .failure(let error) = PriceList.parse(price) { throw ValidationError("--price \(error)") }
        }
    }

    /// The prices from these flags over the environment and `config` (or the system config file), for the commands
    /// that read specs without a store (`plan`, `validate`): the same prices the runner would use.
    /// A system config file that cannot be read (root's, mode 0600) does not stop a user from validating: they
    /// are told, and the flags and fal's published prices apply.
    func priceList(config: String?) throws -> PriceList {
        let environment = ProcessInfo.processInfo.environment
        do {
            let layers = try ConfigurationLayers.load(flags: priceFlags, explicitFile: config, processEnvironment: environment)
            return try EffectiveSettings.prices(layers)
        } catch let error as ConfigurationError {
            guard config == nil, environment["KLING_BATCH_CONFIG"] == nil else { throw ValidationError(error.description) }
            Console.error("warning: \(error); pricing with the flags and fal's published prices instead (--config names another file)")
            do {
                return try EffectiveSettings.prices(ConfigurationLayers(flags: priceFlags))
            } catch let error as ConfigurationError {
                throw ValidationError(error.description)
            }
        }
    }

    var validator: SpecValidator {
        var options = SpecValidator.Options()
        options.allowedRoots = allowedRoots
        options.base = base
        return SpecValidator(options: options)
    }
}

/// The config file, for commands that read only its prices (`plan`, `validate`).
struct PriceConfigOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Config file whose prices: apply (env KLING_BATCH_CONFIG; default /etc/kling-batch/config.yaml when it exists).", valueName: "path"))
    var config: String?
}

/// The spec files or folders `validate` and `plan` read.
struct SpecPaths: ParsableArguments {
    @Argument(help: ArgumentHelp("Spec files, or folders whose .yaml/.yml/.json files are read.", valueName: "path"))
    var paths: [String]
}

/// `--json` for scripts.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print machine-readable JSON instead of text.")
    var json = false
}
