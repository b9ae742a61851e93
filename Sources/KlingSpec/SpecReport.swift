import KlingCore

/// The outcome of validating one spec file: its jobs when valid, and every problem and warning found.
public struct SpecReport: Sendable {
    /// The file as it was named.
    public let file: String
    /// The absolute path.
    public let absolutePath: String
    /// Lower-case hex SHA-256 of the file's bytes; nil when it could not be read.
    public let sha256: String?
    /// The batch name: the file's stem, made safe for a folder name.
    public let batchName: String
    /// The jobs, only when the file is valid as a whole (a batch is accepted entire or not at all).
    public let jobs: [JobSpec]
    public let diagnostics: [SpecDiagnostic]
    /// How the jobs came about when the file uses `matrix`, `rows` or `takes`; nil for jobs written one by one.
    public var expansion: SpecExpansionSummary? = nil
    /// The batch's `on_complete:` hook name (or `none`); nil: the runner's own setting applies.
    public var onComplete: String? = nil

    public var errors: [SpecDiagnostic] { diagnostics.filter(\.isError) }
    public var warnings: [SpecDiagnostic] { diagnostics.filter { !$0.isError } }
    public var isValid: Bool { errors.isEmpty && !jobs.isEmpty }

    /// Seconds of video all jobs would make.
    public var totalSeconds: Int { jobs.reduce(0) { $0 + $1.duration } }

    /// What all jobs would cost, each at its endpoint's price.
    public func estimatedCost(_ prices: PriceList = .published) -> USD {
        USD(micros: jobs.reduce(0) { $0 + $1.estimatedCost(prices).micros })
    }
}

extension SpecReport {
    /// A file refused before it was read (a link out of the jobs folder): one error, no jobs, no content echoed.
    public static func refused(file: String, message: String) -> SpecReport {
        SpecReport(
            file: file, absolutePath: SpecValidator.absolute(file), sha256: nil, batchName: SpecValidator.stem(of: file), jobs: [],
            diagnostics: [SpecDiagnostic(severity: .error, file: file, line: nil, column: nil, fieldPath: "", message: message)])
    }
}

/// How a file's jobs came about, for `plan` and `validate`: job templates × CSV rows × matrix values × takes.
public struct SpecExpansionSummary: Sendable, Hashable {
    /// One `matrix:` key and how many values it has.
    public struct MatrixKey: Sendable, Hashable {
        public var key: String
        public var values: Int
    }

    public var templates: Int
    public var rowsFile: String?
    public var rows: Int?
    public var matrix: [MatrixKey]
    /// The file's `takes:`; `takesVary` when some job sets its own.
    public var takes: Int
    public var takesVary: Bool
    public var jobs: Int

    /// The number of combinations of one template, takes aside: rows × matrix values.
    public var combinations: Int { matrix.reduce(rows ?? 1) { $0 * $1.values } }

    /// `2 job templates × 100 rows of prompts.csv × 2 aspect_ratio × 50 takes = 20000 jobs`.
    public var description: String {
        var factors = ["\(templates) job template\(templates == 1 ? "" : "s")"]
        if let rows, let rowsFile { factors.append("\(rows) row\(rows == 1 ? "" : "s") of \(rowsFile)") }
        factors += matrix.map { "\($0.values) \($0.key)" }
        if takesVary {
            factors.append("takes per job")
        } else if takes != 1 {
            factors.append("\(takes) takes")
        }
        return factors.joined(separator: " × ") + " = \(jobs) job\(jobs == 1 ? "" : "s")"
    }
}
