import Foundation
import Yams

#if canImport(Glibc)
import Glibc
#endif

/// Reading `rows:`: a CSV file whose header names variables or job fields, one combination per record.
extension SpecReader {
    /// The rows file, resolved like an image path and read strictly; nil when it cannot be used (reported, with the
    /// CSV's own line and column where the problem is inside it).
    mutating func readRows(_ node: Node, taken: Set<String>, context: inout JobContext) -> SpecExpansion.Rows? {
        guard case .scalar = node, let written = node.text?.trimmingCharacters(in: .whitespaces), !written.isEmpty else {
            error(at: node, "rows", "rows is the path of a CSV file (e.g. rows: prompts.csv), not \(node.kindName)")
            return nil
        }
        let real: String
        switch Self.resolveInside(written, context: &context, noun: "rows files") {
        case .success(let path): real = path
        case .failure(let problem):
            error(at: node, "rows", problem.message)
            return nil
        }
        var info = stat()
        guard stat(real, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            error(at: node, "rows", "'\(written)' is not a regular file")
            return nil
        }
        guard Int(info.st_size) <= Self.maxRowsBytes else {
            error(at: node, "rows", "'\(written)' is \(SpecValidator.megabytes(Int(info.st_size))); a rows file may be at most \(SpecValidator.megabytes(Self.maxRowsBytes))")
            return nil
        }
        guard let data = FileManager.default.contents(atPath: real) else {
            error(at: node, "rows", "'\(written)' cannot be read (permissions?)")
            return nil
        }
        let table: CSVTable
        switch CSVTable.parse(Array(data)) {
        case .success(let parsed): table = parsed
        case .failure(let problem):
            error(at: node, "rows", "\(Self.csvPlace(written, problem.line, problem.column)) \(problem.message)")
            return nil
        }
        context.identityExtras.append(contentsOf: Array("\u{0}rows:\(written)\u{0}".utf8) + Array(data))
        guard let names = readHeader(table.header, written: written, node: node, taken: taken) else { return nil }
        guard !table.records.isEmpty else {
            error(at: node, "rows", "'\(written)' has a header but no rows; it would make no jobs")
            return nil
        }
        return SpecExpansion.Rows(written: written, node: node, table: table, names: names)
    }

    /// The header's names; nil when any cannot be used (each reported).
    private mutating func readHeader(_ header: [CSVTable.Field], written: String, node: Node, taken: Set<String>) -> [String]? {
        var names: [String] = []
        var ok = true
        for field in header {
            let name = field.text.trimmingCharacters(in: .whitespaces)
            let place = Self.csvPlace(written, field.line, field.column)
            let problem: String?
            if name.isEmpty {
                problem = "a column has no name; the first line must name every column"
            } else if names.contains(name) {
                problem = "the column '\(name)' appears twice in the header"
            } else if name == "meta" {
                problem = "meta cannot come from a CSV column; write {variables} in meta's values instead"
            } else if SpecExpansion.builtins.contains(name) {
                problem = "'\(name)' is a built-in variable ({take}, {index}, {row}); rename the column"
            } else if taken.contains(name) {
                problem = "the column '\(name)' is also in vars: or matrix:; keep it in one place"
            } else if !SpecExpansion.settableFields.contains(name) && !TemplateText.isName(name) {
                problem = "'\(Self.shortText(name))' is not a column name; the first line must name the columns (e.g. prompt,mood) with letters, digits and _"
            } else {
                problem = nil
            }
            if let problem {
                error(at: node, "rows", "\(place) \(problem)")
                ok = false
            }
            names.append(name)
        }
        return ok ? names : nil
    }

    /// `prompts.csv:3:7:`, how every message about a place inside a rows file starts.
    static func csvPlace(_ written: String, _ line: Int?, _ column: Int?) -> String {
        guard let line else { return "\(written):" }
        return "\(written):\(line):" + (column.map { "\($0):" } ?? "")
    }

    static func shortText(_ text: String) -> String {
        text.count <= 40 ? text : String(text.prefix(37)) + "..."
    }
}
