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
        let data: [UInt8]
        switch Self.readVerified(real, written: written, roots: context.resolvedRoots(), limit: Self.maxRowsBytes) {
        case .success(let bytes): data = bytes
        case .failure(let problem):
            error(at: node, "rows", problem.message)
            return nil
        }
        let table: CSVTable
        switch CSVTable.parse(data) {
        case .success(let parsed): table = parsed
        case .failure(let problem):
            error(at: node, "rows", "\(Self.csvPlace(written, problem.line, problem.column)) \(problem.message)")
            return nil
        }
        context.identityExtras.append(contentsOf: Array("\u{0}rows:\(written)\u{0}".utf8) + data)
        guard let names = readHeader(table.header, written: written, node: node, taken: taken) else { return nil }
        guard !table.records.isEmpty else {
            error(at: node, "rows", "'\(written)' has a header but no rows; it would make no jobs")
            return nil
        }
        return SpecExpansion.Rows(written: written, node: node, table: table, names: names)
    }

    /// The most columns a rows file may have: a header is names a person chose, not data.
    static let maxColumns = 256

    /// The header's names; nil when any cannot be used (the first few problems are reported; a name that is not
    /// a name is not echoed, so no line of a file reaches a log or an errors file through it).
    private mutating func readHeader(_ header: [CSVTable.Field], written: String, node: Node, taken: Set<String>) -> [String]? {
        guard header.count <= Self.maxColumns else {
            error(at: node, "rows", "\(Self.csvPlace(written, 1, 1)) the header has \(header.count) columns; at most \(Self.maxColumns) are allowed")
            return nil
        }
        var names: [String] = []
        var seen = Set<String>()
        var problems = 0
        for (index, field) in header.enumerated() {
            let name = field.text.trimmingCharacters(in: .whitespaces)
            let problem: String?
            if name.isEmpty {
                problem = "column \(index + 1) has no name; the first line must name every column"
            } else if !SpecExpansion.settableFields.contains(name) && !TemplateText.isName(name) {
                problem = "column \(index + 1)'s name is not a name; the first line must name the columns (e.g. prompt,mood) with letters, digits and _ (at most 64)"
            } else if seen.contains(name) {
                problem = "the column '\(name)' appears twice in the header"
            } else if name == "meta" {
                problem = "meta cannot come from a CSV column; write {variables} in meta's values instead"
            } else if SpecExpansion.builtins.contains(name) {
                problem = "'\(name)' is a built-in variable ({take}, {index}, {row}); rename the column"
            } else if taken.contains(name) {
                problem = "the column '\(name)' is also in vars: or matrix:; keep it in one place"
            } else {
                problem = nil
            }
            seen.insert(name)
            names.append(name)
            guard let problem else { continue }
            problems += 1
            if problems <= 5 { error(at: node, "rows", "\(Self.csvPlace(written, field.line, field.column)) \(problem)") }
        }
        if problems > 5 { error(at: node, "rows", "\(Self.csvPlace(written, 1, 1)) and \(problems - 5) more problems in the header") }
        return problems == 0 ? names : nil
    }

    /// The file at `path` read in one open, checked where it really is after opening (`/proc/self/fd`): a name
    /// swapped for a link (or a FIFO) between the check and the read can never make it read what lies outside.
    static func readVerified(_ path: String, written: String, roots: [String], limit: Int) -> Result<[UInt8], ImageProblem> {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return .failure(ImageProblem(message: "'\(written)' cannot be read (\(String(cString: strerror(errno))))")) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return .failure(ImageProblem(message: "'\(written)' is not a regular file")) }
        if let opened = SpecFiles.readLink("/proc/self/fd/\(fd)"), !roots.contains(where: { opened == $0 || opened.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") }) {
            return .failure(ImageProblem(message: "'\(written)' changed while it was read and now leads outside the allowed folders"))
        }
        guard Int(info.st_size) <= limit else {
            return .failure(ImageProblem(message: "'\(written)' is \(SpecValidator.megabytes(Int(info.st_size))); a rows file may be at most \(SpecValidator.megabytes(limit))"))
        }
        let bytes = SpecFiles.readAll(fd, limit: limit)
        guard bytes.count <= limit else { return .failure(ImageProblem(message: "'\(written)' grew past \(SpecValidator.megabytes(limit)) while it was read")) }
        return .success(bytes)
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
