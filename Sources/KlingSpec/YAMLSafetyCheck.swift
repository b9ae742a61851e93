// CYaml is the libyaml that Yams vendors; its event API lets this check run in one linear pass.
import CYaml

/// A linear, non-recursive pass over a file's YAML events that refuses what could hang or crash the composer.
///
/// Yams builds a tree recursively and hashes mapping keys to find duplicates, so deep nesting could exhaust
/// the stack and an alias "bomb" used as a key would take exponential time. This pass measures nesting depth
/// and the size aliases would expand to, by arithmetic on anchor sizes, before Yams ever sees the text.
struct YAMLSafetyCheck {
    /// Deepest nesting of lists and mappings accepted; real specs use about 5.
    var maxDepth = 64
    /// Most values the document may hold once aliases are expanded.
    var maxExpandedNodes = 100_000

    /// What the pass found wrong, with a 1-based position.
    struct Finding: Equatable {
        var message: String
        var line: Int
        var column: Int
    }

    struct Frame {
        var anchor: String?
        var size = 1
        var isMapping: Bool
        var childCount = 0
    }

    /// Nil when the text is safe to compose; otherwise the first problem.
    func check(_ bytes: [UInt8]) -> Finding? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return Finding(message: "out of memory", line: 1, column: 1) }
        defer { yaml_parser_delete(&parser) }
        return bytes.withUnsafeBufferPointer { buffer -> Finding? in
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var walk = Walk(limits: self)
            var event = yaml_event_t()
            while true {
                guard yaml_parser_parse(&parser, &event) == 1 else { return syntaxFinding(parser, bytes) }
                defer { yaml_event_delete(&event) }
                switch walk.take(event) {
                case .more: continue
                case .safe: return nil
                case .unsafe(let finding): return finding
                }
            }
        }
    }

    /// libyaml's own complaint, pointing at where the broken construct began (an unterminated quote, say).
    private func syntaxFinding(_ parser: yaml_parser_t, _ bytes: [UInt8]) -> Finding {
        let problem = parser.problem.map { String(cString: $0) } ?? "unreadable YAML"
        let problemLine = Int(parser.problem_mark.line) + 1
        let problemColumn = Int(parser.problem_mark.column) + 1
        if problem.hasPrefix("Maximum nesting level") {
            return Finding(message: "nested more than \(maxDepth) levels deep", line: problemLine, column: problemColumn)
        }
        var hint = ""
        if problem.hasPrefix("mapping values are not allowed") {
            hint = " (a value that contains ': ' must be quoted, e.g. \"16 : 9\")"
        }
        if let reserved = Self.reservedCharacter(bytes, line: Int(parser.problem_mark.line), column: Int(parser.problem_mark.column)) {
            // `prompt: @Element1 walks` is how people write prompts; YAML reserves @ and ` at the start of a value.
            hint = " (YAML does not allow a value to start with \(reserved): quote it, e.g. prompt: \"\(reserved)Element1 walks in\")"
        }
        if let context = parser.context.map({ String(cString: $0) }) {
            return Finding(
                message: "YAML syntax: \(context) that starts here: \(problem) at line \(problemLine), column \(problemColumn)\(hint)",
                line: Int(parser.context_mark.line) + 1, column: Int(parser.context_mark.column) + 1)
        }
        return Finding(message: "YAML syntax: \(problem)\(hint)", line: problemLine, column: problemColumn)
    }

    /// `@` or `` ` `` at libyaml's 0-based `line` and `column` (counted in characters, not bytes), the characters
    /// YAML reserves at the start of a plain value.
    static func reservedCharacter(_ bytes: [UInt8], line: Int, column: Int) -> Character? {
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.indices.contains(line) else { return nil }
        let characters = Array(lines[line].unicodeScalars)
        guard characters.indices.contains(column) else { return nil }
        switch characters[column] {
        case "@": return "@"
        case "`": return "`"
        default: return nil
        }
    }
}
