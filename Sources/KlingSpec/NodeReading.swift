import Yams

/// Reading Yams nodes the way a person meant them.
extension Node {
    /// True for `~`, `null`, `Null`, `NULL` and an empty plain value: YAML's ways of writing nothing.
    var isNull: Bool {
        guard case .scalar(let scalar) = self else { return false }
        guard scalar.style == .plain || scalar.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// The text of a scalar exactly as written (YAML 1.1's sexagesimal `16:9` stays `16:9`); nil otherwise.
    var text: String? {
        if case .scalar(let scalar) = self { return scalar.string }
        return nil
    }

    var isQuoted: Bool {
        if case .scalar(let scalar) = self { return scalar.style == .singleQuoted || scalar.style == .doubleQuoted }
        return false
    }

    /// A word for the node's kind, for type errors.
    var kindName: String {
        switch self {
        case .scalar: return isNull ? "nothing (null)" : "a single value"
        case .mapping(let mapping):
            // `prompt: {mood}` is a flow mapping to YAML: say so, since it was meant as a placeholder.
            if mapping.count == 1, let key = mapping.keys.first?.text, mapping.values.first?.isNull == true,
               TemplateText.isName(key) {
                return "a mapping: YAML reads {\(key)} as one; quote the text, \"{\(key)}\""
            }
            return "a mapping (key: value pairs)"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    var position: (line: Int, column: Int)? { mark.map { ($0.line, $0.column) } }
}

/// One `key: value` of a mapping, after merge keys are applied.
struct MappingEntry {
    let key: String
    let keyNode: Node
    let value: Node
}

extension SpecReader {
    /// The entries of a mapping with YAML merge keys (`<<: *defaults`) applied; explicit keys win over merged ones.
    /// Non-text keys are reported and skipped.
    mutating func entries(of mapping: Node.Mapping, path: String) -> [MappingEntry] {
        var explicit: [MappingEntry] = []
        var merged: [MappingEntry] = []
        for (keyNode, value) in mapping {
            guard case .scalar = keyNode, let key = keyNode.text else {
                error(at: keyNode, path, "keys must be plain words, not \(keyNode.kindName)")
                continue
            }
            if key == "<<" && !keyNode.isQuoted {
                let sources: [Node]
                switch value {
                case .sequence(let list): sources = Array(list)
                default: sources = [value]
                }
                for source in sources {
                    guard case .mapping(let inner) = source else {
                        error(at: source, path, "a merge (<<) takes a mapping or a list of mappings, not \(source.kindName)")
                        continue
                    }
                    for entry in entries(of: inner, path: path) where !merged.contains(where: { $0.key == entry.key }) {
                        merged.append(entry)
                    }
                }
                continue
            }
            explicit.append(MappingEntry(key: key, keyNode: keyNode, value: value))
        }
        return explicit + merged.filter { entry in !explicit.contains { $0.key == entry.key } }
    }

    /// Reports every key not in `allowed`, with a suggestion when one is close.
    /// `alsoSuggest` are keys that are wrong here but likely meant (a batch's `jobs:` in a file read as one job).
    mutating func rejectUnknownKeys(_ entries: [MappingEntry], allowed: [String], path: String, what: String, alsoSuggest: [String] = []) {
        for entry in entries where !allowed.contains(entry.key) {
            let place = SpecReader.join(path, entry.key)
            var message = "unknown key '\(entry.key)' in \(what)"
            if let suggestion = KeySuggestion.suggest(entry.key, among: allowed + alsoSuggest) {
                message += "; did you mean '\(suggestion)'?"
            } else {
                message += "."
            }
            message += " Allowed: \(allowed.joined(separator: ", "))."
            error(at: entry.keyNode, place, message)
        }
    }

    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
    static func index(_ path: String, _ index: Int) -> String { "\(path)[\(index)]" }
}

/// Collects diagnostics for one file while its nodes are read.
struct SpecReader {
    let file: String
    var diagnostics: [SpecDiagnostic] = []
    /// Errors found so far, folded ones included: readers compare it before and after reading a part, which
    /// must not cost a pass over every diagnostic (ten thousand expanded jobs with a problem each would be quadratic).
    private(set) var errorsFound = 0

    var hasErrors: Bool { diagnostics.contains(where: \.isError) }

    mutating func error(at node: Node?, _ path: String, _ message: String) {
        add(.error, node, path, message)
    }

    mutating func warning(at node: Node?, _ path: String, _ message: String) {
        add(.warning, node, path, message)
    }

    mutating func fileError(_ message: String, line: Int? = nil, column: Int? = nil) {
        errorsFound += 1
        diagnostics.append(SpecDiagnostic(severity: .error, file: file, line: line, column: column, fieldPath: "", message: message))
    }

    private mutating func add(_ severity: SpecDiagnostic.Severity, _ node: Node?, _ path: String, _ message: String) {
        let position = node?.position
        if severity == .error { errorsFound += 1 }
        diagnostics.append(
            SpecDiagnostic(severity: severity, file: file, line: position?.line, column: position?.column, fieldPath: path, message: message))
    }
}
