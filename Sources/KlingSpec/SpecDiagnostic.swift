/// One problem (or warning) in a spec file, in the form `file:line:column: error: path: message`.
public struct SpecDiagnostic: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Severity: String, Sendable, Codable { case error, warning }

    public var severity: Severity
    /// The spec file as it was named.
    public var file: String
    /// 1-based; nil for problems of the file as a whole.
    public var line: Int?
    public var column: Int?
    /// The field path in the spec, e.g. `jobs[2].elements[0].frontal_image_url`; empty for the file itself.
    public var fieldPath: String
    /// What is wrong and what is allowed.
    public var message: String

    public init(severity: Severity, file: String, line: Int?, column: Int?, fieldPath: String, message: String) {
        self.severity = severity
        self.file = file
        self.line = line
        self.column = column
        self.fieldPath = fieldPath
        self.message = message
    }

    public var isError: Bool { severity == .error }

    public var description: String {
        var location = file
        if let line { location += ":\(line)" + (column.map { ":\($0)" } ?? "") }
        let path = fieldPath.isEmpty ? "" : "\(fieldPath): "
        return "\(location): \(severity.rawValue): \(path)\(message)"
    }
}
