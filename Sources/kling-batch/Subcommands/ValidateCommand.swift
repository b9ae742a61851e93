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
            local image (format, size, dimensions, aspect ratio). Exits 0 when every file is valid, 1 otherwise.

            Examples:
              kling-batch validate jobs/
              kling-batch validate jobs/greenhouse.yaml --json
            """
    )

    @Argument(help: ArgumentHelp("Spec files, or folders whose .yaml/.yml/.json files are checked.", valueName: "path"))
    var paths: [String]

    @OptionGroup var spec: SpecOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let list = try SpecFiles.expand(paths)
        let files = list.files.map(\.path) + list.refused.map(\.file)
        let validator = spec.validator
        let reports = list.files.map { validator.validate($0) } + list.refused
        if output.json {
            Console.json(.array(reports.map { $0.json(rate: spec.pricePerSecond) }))
        } else {
            if files.isEmpty { Console.error("no spec files (.yaml, .yml, .json) in \(paths.joined(separator: ", "))") }
            for report in reports {
                for diagnostic in report.diagnostics { Console.out(diagnostic.description) }
                if report.isValid {
                    let jobs = report.jobs.count
                    Console.out("ok \(report.file): \(jobs) job\(jobs == 1 ? "" : "s"), \(report.totalSeconds) s of video, \(report.estimatedCost(rate: spec.pricePerSecond))"
                        + (report.warnings.isEmpty ? "" : ", \(report.warnings.count) warning\(report.warnings.count == 1 ? "" : "s")"))
                } else {
                    let errors = report.errors.count
                    Console.out("invalid \(report.file): \(errors) problem\(errors == 1 ? "" : "s"); nothing in this file will run")
                }
            }
        }
        if files.isEmpty || reports.contains(where: { !$0.isValid }) { throw ExitCode(1) }
    }
}
