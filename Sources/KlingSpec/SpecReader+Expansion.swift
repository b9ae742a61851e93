import Foundation
import Yams

/// Reading `vars:`, `matrix:`, `takes:` and `rows:`: what a file varies over, each mistake reported where it is.
extension SpecReader {
    static let expansionKeys = ["vars", "matrix", "takes", "rows"]
    /// The most bytes a `rows:` file may hold; 10,000 jobs of long prompts fit in far less.
    static let maxRowsBytes = 8 << 20
    static let maxTakes = SpecExpansion.maxJobs

    /// The file's expansion; nil when any of its keys is wrong (the errors are reported).
    mutating func readExpansion(_ top: [MappingEntry], context: inout JobContext) -> SpecExpansion? {
        let before = errorsFound
        var expansion = SpecExpansion()
        expansion.declared = top.contains { Self.expansionKeys.contains($0.key) && !$0.value.isNull }
        expansion.firstKeyNode = top.first { Self.expansionKeys.contains($0.key) && $0.key != "vars" }?.keyNode
        if let entry = top.first(where: { $0.key == "vars" }), !entry.value.isNull { expansion.variables = readVars(entry.value) }
        if let entry = top.first(where: { $0.key == "matrix" }), !entry.value.isNull {
            expansion.axes = readMatrix(entry.value, variables: expansion.variables)
        }
        if let entry = top.first(where: { $0.key == "takes" }), !entry.value.isNull {
            expansion.takes = readTakes(entry.value, path: "takes") ?? 1
        }
        if let entry = top.first(where: { $0.key == "rows" }), !entry.value.isNull {
            expansion.rows = readRows(entry.value, taken: Set(expansion.variables.keys).union(expansion.axes.map(\.key)), context: &context)
        }
        return errorsFound == before ? expansion : nil
    }

    /// `vars:`: names to single values, usable as `{name}`.
    mutating func readVars(_ node: Node) -> [String: String] {
        guard case .mapping(let mapping) = node else {
            error(at: node, "vars", "vars must be a mapping of names to values, e.g. vars: {style: refs/painting.jpg}, not \(node.kindName)")
            return [:]
        }
        var values: [String: String] = [:]
        for entry in entries(of: mapping, path: "vars") {
            let path = SpecReader.join("vars", entry.key)
            guard checkVariableName(entry.key, node: entry.keyNode, path: path, what: "a variable") else { continue }
            if SpecExpansion.settableFields.contains(entry.key) || entry.key == "meta" {
                error(at: entry.keyNode, path, "'\(entry.key)' is a job field, not a variable; set it in defaults: (one value) or matrix: (several)")
                continue
            }
            guard case .scalar = entry.value, !entry.value.isNull, let text = entry.value.text else {
                error(at: entry.value, path, "a variable holds a single value (text or a number), not \(entry.value.kindName); for one job per value, use matrix:")
                continue
            }
            values[entry.key] = text
        }
        return values
    }

    /// `matrix:`: each key a list of values; every combination becomes one job per template.
    mutating func readMatrix(_ node: Node, variables: [String: String]) -> [SpecExpansion.Axis] {
        guard case .mapping(let mapping) = node else {
            error(at: node, "matrix", "matrix must be a mapping of names to lists of values, e.g. matrix: {aspect_ratio: [\"16:9\", \"9:16\"]}, not \(node.kindName)")
            return []
        }
        var axes: [SpecExpansion.Axis] = []
        for entry in entries(of: mapping, path: "matrix") {
            let path = SpecReader.join("matrix", entry.key)
            let setsField = SpecExpansion.settableFields.contains(entry.key)
            if entry.key == "meta" {
                error(at: entry.keyNode, path, "meta cannot vary in a matrix; write {variables} in its values instead, e.g. meta: {mood: \"{mood}\"}")
                continue
            }
            guard setsField || checkVariableName(entry.key, node: entry.keyNode, path: path, what: "a matrix key") else { continue }
            if variables[entry.key] != nil {
                error(at: entry.keyNode, path, "'\(entry.key)' is both in vars: and in matrix:; keep it in one")
                continue
            }
            let values = listItems(entry.value, path: path, what: "a matrix key's values")
            if values.isEmpty {
                if case .sequence = entry.value {
                    error(at: entry.value, path, "'\(entry.key)' has no values; a matrix key needs at least one (none would make no jobs)")
                }
                continue
            }
            var texts: [String] = []
            for (index, value) in values.enumerated() {
                if let text = Self.axisText(value) {
                    texts.append(text)
                } else if setsField {
                    texts.append("")
                } else {
                    error(at: value, Self.index(path, index), "a matrix value for a variable is a single value (text or a number), not \(value.kindName)")
                }
            }
            axes.append(.init(key: entry.key, keyNode: entry.keyNode, values: values, setsField: setsField, texts: texts))
        }
        return axes
    }

    /// A matrix value as `{key}` writes it: a scalar's text, or a list of scalars joined with commas.
    static func axisText(_ node: Node) -> String? {
        switch node {
        case .scalar where !node.isNull: return node.text
        case .sequence(let items):
            let texts = items.compactMap { $0.isNull ? nil : $0.text }
            return texts.count == items.count ? texts.joined(separator: ",") : nil
        default: return nil
        }
    }

    /// `takes:`: how many independent generations of each combination (the model has no seed).
    mutating func readTakes(_ node: Node, path: String) -> Int? {
        if let text = node.text, !node.isNull, let takes = Int(text.trimmingCharacters(in: .whitespaces)), (1...Self.maxTakes).contains(takes) {
            return takes
        }
        let shown = node.text.map { "'\($0)'" } ?? node.kindName
        error(at: node, path, "\(shown) is not a number of takes; write a whole number from 1 to \(Self.maxTakes)")
        return nil
    }

    /// Whether `name` may be a variable (reported when not).
    mutating func checkVariableName(_ name: String, node: Node, path: String, what: String) -> Bool {
        if SpecExpansion.builtins.contains(name) {
            error(at: node, path, "'\(name)' is a built-in variable ({take}, {index}, {row}); choose another name")
            return false
        }
        guard TemplateText.isName(name) else {
            error(at: node, path, "'\(name)' cannot be \(what)'s name; names use letters, digits and _ (not starting with a digit), so {\(name)} can be written")
            return false
        }
        return true
    }
}
