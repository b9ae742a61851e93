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
