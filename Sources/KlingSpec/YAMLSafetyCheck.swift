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

    private struct Frame {
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
            var stack: [Frame] = []
            var anchorSizes: [String: Int] = [:]
            var documents = 0
            var total = 0
            var event = yaml_event_t()
            while true {
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    let problem = parser.problem.map { String(cString: $0) } ?? "unreadable YAML"
                    if problem.hasPrefix("Maximum nesting level") {
                        return Finding(message: "nested more than \(maxDepth) levels deep", line: Int(parser.problem_mark.line) + 1, column: Int(parser.problem_mark.column) + 1)
                    }
                    let problemLine = Int(parser.problem_mark.line) + 1
                    let problemColumn = Int(parser.problem_mark.column) + 1
                    var hint = ""
                    if problem.hasPrefix("mapping values are not allowed") {
                        hint = " (a value that contains ': ' must be quoted, e.g. \"16 : 9\")"
                    }
                    // Point at where the broken construct began (an unterminated quote, say), not where it was noticed.
                    if let context = parser.context.map({ String(cString: $0) }) {
                        return Finding(
                            message: "YAML syntax: \(context) that starts here: \(problem) at line \(problemLine), column \(problemColumn)\(hint)",
                            line: Int(parser.context_mark.line) + 1, column: Int(parser.context_mark.column) + 1)
                    }
                    return Finding(message: "YAML syntax: \(problem)\(hint)", line: problemLine, column: problemColumn)
                }
                defer { yaml_event_delete(&event) }
                let line = Int(event.start_mark.line) + 1
                let column = Int(event.start_mark.column) + 1
                var size = 0
                var anchor: String?
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return nil
                case YAML_DOCUMENT_START_EVENT:
                    documents += 1
                    if documents > 1 {
                        return Finding(message: "a spec file holds one YAML document; this one has a second (---)", line: line, column: column)
                    }
                    continue
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    let isMapping = event.type == YAML_MAPPING_START_EVENT
                    let name = isMapping ? event.data.mapping_start.anchor : event.data.sequence_start.anchor
                    stack.append(Frame(anchor: name.map { String(cString: $0) }, isMapping: isMapping))
                    if stack.count > maxDepth {
                        return Finding(message: "nested more than \(maxDepth) levels deep", line: line, column: column)
                    }
                    continue
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    guard let frame = stack.popLast() else { continue }
                    size = frame.size
                    anchor = frame.anchor
                case YAML_SCALAR_EVENT:
                    size = 1
                    anchor = event.data.scalar.anchor.map { String(cString: $0) }
                case YAML_ALIAS_EVENT:
                    let name = event.data.alias.anchor.map { String(cString: $0) } ?? ""
                    guard let known = anchorSizes[name] else {
                        return Finding(message: "the alias *\(name) refers to no anchor &\(name) defined before it", line: line, column: column)
                    }
                    size = known
                    if let parent = stack.last, parent.isMapping, parent.childCount % 2 == 0, known > 1 {
                        return Finding(message: "the alias *\(name) stands for a list or mapping and cannot be a key", line: line, column: column)
                    }
                default:
                    continue
                }
                if let anchor { anchorSizes[anchor] = size }
                total += size
                if total > maxExpandedNodes || size > maxExpandedNodes {
                    return Finding(message: "aliases expand to more than \(maxExpandedNodes) values", line: line, column: column)
                }
                if !stack.isEmpty {
                    stack[stack.count - 1].size += size
                    stack[stack.count - 1].childCount += 1
                }
            }
        }
    }
}
