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

            Each job is priced at its endpoint's price per second of video: fal's published $0.112/s for \
            fal-ai/kling-video/o1/reference-to-video, or what the config file's prices: (or --price) says. A job \
            on an endpoint with no known price is marked "price unknown" and counted at the highest known price, \
            as the budget counts it. Costs are exact (no row is rounded), so the column adds up to the total.

            A file that multiplies its jobs (matrix:, rows:, takes:) is shown expanded, with how its count came \
            about (job templates × CSV rows × matrix values × takes). When more than \(Self.fullTableLimit) jobs \
            are planned, the table shows the first \(Self.shownPerFile) of each large file; --all prints every \
            row, and --json always lists every job.

            Examples:
              kling-batch plan jobs/
              kling-batch plan jobs/tower.yaml --all
              kling-batch plan jobs/ --price fal-ai/kling-video/o1/standard/reference-to-video=0.084
              kling-batch plan jobs/ --config /etc/kling-batch/config.yaml --json
            """
    )

    @OptionGroup var specs: SpecPaths
    @OptionGroup var spec: SpecOptions
    @OptionGroup var pricing: PriceConfigOptions
    @OptionGroup var output: OutputOptions
    @Flag(help: "Print every job in the table, however many.")
    var all = false

    /// Plans up to this many jobs are printed whole.
    static let fullTableLimit = 200
    /// Beyond it, how many jobs of each large file are printed.
    static let shownPerFile = 10

    func run() async throws {
        let reports = try spec.validator.validate(paths: specs.paths)
        let plan = SpecPlan(reports: reports, prices: try spec.priceList(config: pricing.config))
        if output.json {
            Console.json(json(plan))
        } else {
            printTable(plan)
        }
        if reports.isEmpty || !plan.invalid.isEmpty { throw ExitCode(1) }
    }

    private func json(_ plan: SpecPlan) -> JSONValue {
        [
            "jobs": .array(plan.jobs.map { report, job in job.json(batch: report.batchName, file: report.file, prices: plan.prices) }),
            "expansions": .array(plan.expansions.map { report, summary in summary.json(file: report.file) }),
            "totals": [
                "jobs": .int(Int64(plan.jobs.count)), "seconds": .int(Int64(plan.seconds)), "cost_usd": .double(plan.cost.dollars),
                "cost_micros": .int(plan.cost.micros),
            ],
            "prices_usd_per_second": .object(plan.prices.perSecond.mapValues { .double($0.dollars) }),
            "unpriced_endpoints": .array(plan.unpricedEndpoints.map(JSONValue.string)),
            "invalid_files": .array(plan.invalid.map { $0.json(prices: plan.prices) }),
        ]
    }

    private func printTable(_ plan: SpecPlan) {
        var table = TextTable([("JOB", .left), ("SECONDS", .right), ("ASPECT", .left), ("INPUTS", .right), ("COST", .right)])
        let abbreviate = !all && plan.jobs.count > Self.fullTableLimit
        var shown: [String: Int] = [:]
        for (report, job) in plan.jobs {
            if abbreviate {
                shown[report.absolutePath, default: 0] += 1
                let count = shown[report.absolutePath] ?? 0
                guard count <= Self.shownPerFile else {
                    if count == Self.shownPerFile + 1 {
                        let rest = report.jobs.count - Self.shownPerFile
                        table.add(["... \(rest) more of \(report.file) (--all or --json lists them)", "", "", "", ""])
                    }
                    continue
                }
            }
            table.add([
                "\(report.batchName)/\(job.name)", String(job.duration), job.aspectRatio.rawValue, String(job.inputCount),
                job.estimatedCost(plan.prices).exactDescription + (plan.prices.price(for: job.endpoint).known ? "" : " (price unknown)"),
            ])
        }
        if plan.jobs.isEmpty {
            Console.out("no valid jobs")
        } else {
            let count = plan.jobs.count
            Console.out(table.render(footer: ["\(count) job\(count == 1 ? "" : "s")", String(plan.seconds), "", "", plan.cost.exactDescription]))
        }
        for (report, summary) in plan.expansions { Console.out("\(report.file): \(summary.description)") }
        for endpoint in plan.unpricedEndpoints {
            let assumed = plan.prices.price(for: endpoint).perSecond.exactDescription
            Console.error("price unknown for \(endpoint): counted at the highest known price, \(assumed)/s; set it with prices: in the config or --price \(endpoint)=DOLLARS")
        }
        for report in plan.invalid {
            Console.error("")
            for diagnostic in report.errors { Console.error(diagnostic.description) }
            Console.error("invalid \(report.file): not planned; run `kling-batch validate \(report.file)` for details")
        }
    }
}
