import Foundation
import KlingCore
import Runner

/// `report`'s three ways of saying the same figures: a table for people, JSON for scripts, CSV for spreadsheets.
extension ReportCommand {
    /// The columns, in the order every format uses.
    static let columns = [
        "jobs", "submissions", "seconds", "committed_usd", "completed_usd", "failed_after_submit_usd", "cancelled_at_fal_usd", "open_usd",
        "possible_duplicates",
    ]

    /// A line's figures in `columns` order, dollars exact.
    static func cells(_ line: SpendReport.Line) -> [String] {
        [String(line.jobs), String(line.submissions), String(line.seconds)]
            + [line.committed, line.completed, line.failed, line.cancelled, line.open].map(\.decimalText)
            + [String(line.possibleDuplicates)]
    }

    /// Dollars as numbers for reading, and exact micro-dollars beside each for adding up.
    func jsonReport(_ report: SpendReport, from: Date?, to: Date?) -> JSONValue {
        func object(_ line: SpendReport.Line) -> JSONValue {
            var fields: [String: JSONValue] = [
                "key": .string(line.key), "jobs": .int(Int64(line.jobs)), "submissions": .int(Int64(line.submissions)),
                "seconds": .int(Int64(line.seconds)), "possible_duplicates": .int(Int64(line.possibleDuplicates)),
            ]
            let amounts = [
                ("committed", line.committed), ("completed", line.completed), ("failed_after_submit", line.failed),
                ("cancelled_at_fal", line.cancelled), ("open", line.open),
            ]
            for (name, amount) in amounts {
                fields[name + "_usd"] = .double(amount.dollars)
                fields[name + "_micros"] = .int(amount.micros)
            }
            return .object(fields)
        }
        return [
            "by": .string(report.grouping.rawValue),
            "since": from.map { .string($0.iso8601) } ?? .null, "until": to.map { .string($0.iso8601) } ?? .null,
            "groups": .array(report.lines.map(object)), "totals": object(report.totals),
        ]
    }

    /// RFC 4180 CSV: a header row, one row per group, the totals last.
    func csvReport(_ report: SpendReport) -> String {
        var lines = [([report.grouping.rawValue] + Self.columns).joined(separator: ",")]
        for line in report.lines + [report.totals] {
            lines.append(([Self.csvField(line.key)] + Self.cells(line)).joined(separator: ","))
        }
        return lines.joined(separator: "\n")
    }

    /// A CSV field quoted when it must be (RFC 4180), and never read as a formula by a spreadsheet.
    static func csvField(_ text: String) -> String {
        var value = text
        if let first = value.first, "=+-@".contains(first) { value = "'" + value }
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// A table for a terminal, amounts exact so the columns add up to the totals.
    func printText(_ report: SpendReport) {
        guard !report.lines.isEmpty else {
            Console.out("nothing was committed at fal in that period")
            return
        }
        var table = TextTable([
            (report.grouping.rawValue.uppercased(), .left), ("JOBS", .right), ("SUBMITS", .right), ("SECONDS", .right), ("COMMITTED", .right),
            ("COMPLETED", .right), ("FAILED", .right), ("CANCELLED", .right), ("OPEN", .right), ("DUP?", .right),
        ])
        func row(_ line: SpendReport.Line) -> [String] {
            [line.key, String(line.jobs), String(line.submissions), String(line.seconds)]
                + [line.committed, line.completed, line.failed, line.cancelled, line.open].map(\.exactDescription)
                + [String(line.possibleDuplicates)]
        }
        for line in report.lines { table.add(row(line)) }
        Console.out(table.render(footer: row(report.totals)))
        if report.totals.possibleDuplicates > 0 {
            Console.out("DUP?: submissions whose answer was lost and that were sent again; fal may have run (and billed) both")
        }
    }
}
