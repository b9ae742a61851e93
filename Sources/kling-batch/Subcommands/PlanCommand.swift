import ArgumentParser
import KlingCore
import KlingSpec

/// `kling-batch plan`: the jobs that would run, and what they would cost.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show the jobs that would run and their estimated cost.",
        discussion: """
            Validates the specs like `validate`, then lists every job of the valid files with its duration, \
            aspect ratio, number of inputs and estimated cost, and the totals. Exits 1 if any file is invalid.

            Examples:
              kling-batch plan jobs/
              kling-batch plan jobs/ --rate 0.112 --json
            """
    )

    @Argument(help: ArgumentHelp("Spec files, or folders whose .yaml/.yml/.json files are read.", valueName: "path"))
    var paths: [String]

    @OptionGroup var spec: SpecOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let list = try SpecFiles.expand(paths)
        let files = list.files.map(\.path) + list.refused.map(\.file)
        let validator = spec.validator
        let reports = list.files.map { validator.validate($0) } + list.refused
        let valid = reports.filter(\.isValid)
        let invalid = reports.filter { !$0.isValid }
        let rate = spec.pricePerSecond
        let jobs = valid.flatMap { report in report.jobs.map { (report, $0) } }
        let seconds = jobs.reduce(0) { $0 + $1.1.duration }
        let cost = rate * seconds

        if output.json {
            Console.json([
                "jobs": .array(jobs.map { report, job in job.json(batch: report.batchName, file: report.file, rate: rate) }),
                "totals": ["jobs": .int(Int64(jobs.count)), "seconds": .int(Int64(seconds)), "cost_usd": .double(cost.dollars)],
                "rate_usd_per_second": .double(rate.dollars),
                "invalid_files": .array(invalid.map { $0.json(rate: rate) }),
            ])
        } else {
            var table = TextTable([("JOB", .left), ("SECONDS", .right), ("ASPECT", .left), ("INPUTS", .right), ("COST", .right)])
            for (report, job) in jobs {
                table.add(["\(report.batchName)/\(job.name)", String(job.duration), job.aspectRatio.rawValue, String(job.inputCount), job.estimatedCost(rate: rate).description])
            }
            if jobs.isEmpty {
                Console.out("no valid jobs")
            } else {
                Console.out(table.render(footer: ["\(jobs.count) job\(jobs.count == 1 ? "" : "s")", String(seconds), "", "", cost.description]))
            }
            for report in invalid {
                Console.error("")
                for diagnostic in report.errors { Console.error(diagnostic.description) }
                Console.error("invalid \(report.file): not planned; run `kling-batch validate \(report.file)` for details")
            }
        }
        if files.isEmpty || !invalid.isEmpty { throw ExitCode(1) }
    }
}
