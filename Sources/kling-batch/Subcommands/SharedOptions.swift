import ArgumentParser
import KlingCore
import KlingSpec

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

    @Option(help: ArgumentHelp("Price per second of video, in dollars, for estimates and the budget (default 0.112).", valueName: "dollars"))
    var rate: String?

    func validate() throws {
        for root in allowedRoots where !root.hasPrefix("/") {
            throw ValidationError("--allow-root must be an absolute path, got '\(root)'")
        }
        if let rate, USD(parsing: rate) == nil { throw ValidationError("--rate must be an amount in dollars such as 0.112, got '\(rate)'") }
    }

    var pricePerSecond: USD { rate.flatMap(USD.init(parsing:)) ?? .klingO1PerSecond }

    var validator: SpecValidator {
        var options = SpecValidator.Options()
        options.allowedRoots = allowedRoots
        options.base = base
        return SpecValidator(options: options)
    }
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
