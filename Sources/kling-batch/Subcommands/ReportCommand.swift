import ArgumentParser
import Foundation
import JobStore
import KlingCore
import Runner

/// `kling-batch report`: what was committed at fal, by day, batch, endpoint or outcome, to hold against fal's invoice.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Money committed at fal, by day, batch, endpoint or outcome, from the spend ledger.",
        discussion: """
            Reads the spend ledger: one row per submission that may have cost money (fal answered with a request \
            id, or the answer was lost), priced at its endpoint's price when the job was accepted. `purge` never \
            deletes it, so reports cover forgotten jobs too. Per group: jobs, submissions, seconds of video, \
            dollars committed, split into completed, failed after submit, cancelled at fal and still open, and \
            the submissions flagged as possible duplicates. For jobs that have ended, the totals equal the sum \
            of their manifests' `cost.micros` (a job still running has an open row and no final manifest yet; \
            `store abandon` fails jobs without writing one). Days are UTC, as the budget counts them; a \
            submission counts on the day it was sent.

            Examples:
              kling-batch report
              kling-batch report --since 2026-11-01 --until 2026-11-30 --by batch
              kling-batch report --by endpoint --csv > spend.csv
            """
    )

    @OptionGroup var store: StoreOptions

    @Option(help: ArgumentHelp("From this UTC day (2026-11-01) or ISO 8601 time on.", valueName: "date"))
    var since: String?

    @Option(help: ArgumentHelp("Up to and including this UTC day, or before this ISO 8601 time.", valueName: "date"))
    var until: String?

    @Option(help: ArgumentHelp("Group by day, batch, endpoint or state (how each request ended).", valueName: "grouping"))
    var by: String = "day"

    @Flag(help: "Print machine-readable JSON instead of text.")
    var json = false

    @Flag(help: "Print CSV (a header row, ISO dates, exact dollars) for a spreadsheet.")
    var csv = false

    func validate() throws {
        if json && csv { throw ValidationError("--json and --csv cannot both be given") }
        if SpendReport.Grouping(rawValue: by) == nil { throw ValidationError("--by must be day, batch, endpoint or state, got '\(by)'") }
        if let since, ReportDate.parse(since) == nil { throw ValidationError("--since must be a day such as 2026-11-01 or an ISO 8601 time, got '\(since)'") }
        if let until, ReportDate.parse(until) == nil { throw ValidationError("--until must be a day such as 2026-11-30 or an ISO 8601 time, got '\(until)'") }
    }

    func run() async throws {
        let (store, _) = try self.store.openStore()
        let from = since.flatMap { ReportDate.parse($0) }
        let to = until.flatMap { ReportDate.parse($0, endOfDay: true) }
        let report = SpendReport(rows: try store.ledger(since: from, until: to), by: SpendReport.Grouping(rawValue: by)!)
        if json {
            Console.json(jsonReport(report, from: from, to: to))
        } else if csv {
            Console.out(csvReport(report))
        } else {
            printText(report)
        }
    }
}
