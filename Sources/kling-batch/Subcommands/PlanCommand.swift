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

    @OptionGroup var specs: SpecPaths
    @OptionGroup var spec: SpecOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let reports = try spec.validator.validate(paths: specs.paths)
        let plan = SpecPlan(reports: reports, rate: spec.pricePerSecond)
        if output.json {
            Console.json(json(plan))
        } else {
            printTable(plan)
        }
        if reports.isEmpty || !plan.invalid.isEmpty { throw ExitCode(1) }
    }

    private func json(_ plan: SpecPlan) -> JSONValue {
        [
            "jobs": .array(plan.jobs.map { report, job in job.json(batch: report.batchName, file: report.file, rate: plan.rate) }),
            "totals": ["jobs": .int(Int64(plan.jobs.count)), "seconds": .int(Int64(plan.seconds)), "cost_usd": .double(plan.cost.dollars)],
            "rate_usd_per_second": .double(plan.rate.dollars),
            "invalid_files": .array(plan.invalid.map { $0.json(rate: plan.rate) }),
        ]
    }

    private func printTable(_ plan: SpecPlan) {
        var table = TextTable([("JOB", .left), ("SECONDS", .right), ("ASPECT", .left), ("INPUTS", .right), ("COST", .right)])
        for (report, job) in plan.jobs {
            table.add([
                "\(report.batchName)/\(job.name)", String(job.duration), job.aspectRatio.rawValue, String(job.inputCount),
                job.estimatedCost(rate: plan.rate).description,
            ])
        }
        if plan.jobs.isEmpty {
            Console.out("no valid jobs")
        } else {
            let count = plan.jobs.count
            Console.out(table.render(footer: ["\(count) job\(count == 1 ? "" : "s")", String(plan.seconds), "", "", plan.cost.description]))
        }
        for report in plan.invalid {
            Console.error("")
            for diagnostic in report.errors { Console.error(diagnostic.description) }
            Console.error("invalid \(report.file): not planned; run `kling-batch validate \(report.file)` for details")
        }
    }
}
