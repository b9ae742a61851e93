import ArgumentParser
import KlingCore
import KlingSpec

/// `kling-batch validate`: every problem in the given specs, before any money is spent.
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check spec files and print every problem and warning.",
        discussion: """
            Checks everything that can be checked without fal: fields and values, prompt references, and each \
            local image (format, size, dimensions, aspect ratio). A file that uses matrix:, rows: or takes: is \
            expanded first, and the output says how many jobs it makes and how (templates × rows × matrix values × \
            takes); a problem in an expanded job names the combination or the CSV line it came from. Exits 0 when \
            every file is valid, 1 otherwise.

            Examples:
              kling-batch validate jobs/
              kling-batch validate jobs/greenhouse.yaml --json
            """
    )

    @OptionGroup var specs: SpecPaths
    @OptionGroup var spec: SpecOptions
    @OptionGroup var pricing: PriceConfigOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let reports = try spec.validator.validate(paths: specs.paths)
        let prices = try spec.priceList(config: pricing.config)
        if output.json {
            Console.json(.array(reports.map { $0.json(prices: prices) }))
        } else {
            if reports.isEmpty { Console.error("no spec files (.yaml, .yml, .json) in \(specs.paths.joined(separator: ", "))") }
            for report in reports { printReport(report, prices: prices) }
        }
        if reports.isEmpty || reports.contains(where: { !$0.isValid }) { throw ExitCode(1) }
    }

    private func printReport(_ report: SpecReport, prices: PriceList) {
        for diagnostic in report.diagnostics { Console.out(diagnostic.description) }
        if report.isValid {
            let jobs = report.jobs.count
            let warnings = report.warnings.count
            Console.out("ok \(report.file): \(jobs) job\(jobs == 1 ? "" : "s"), \(report.totalSeconds) s of video, \(report.estimatedCost(prices))"
                + (warnings == 0 ? "" : ", \(warnings) warning\(warnings == 1 ? "" : "s")"))
            if let expansion = report.expansion { Console.out("  expands: \(expansion.description)") }
        } else {
            let errors = report.errors.count
            Console.out("invalid \(report.file): \(errors) problem\(errors == 1 ? "" : "s"); nothing in this file will run")
        }
    }
}
