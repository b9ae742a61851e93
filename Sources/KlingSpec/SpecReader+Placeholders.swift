import Yams

/// `{name}` placeholders in a template's strings: checked once per template, substituted per combination.
extension SpecReader {
    /// Reports each unknown placeholder name once (`reported` carries the names already reported); returns the
    /// names used, known or not.
    mutating func checkPlaceholders(_ entries: [MappingEntry], path: String, known: Set<String>, reported: inout Set<String>) -> Set<String> {
        var used = Set<String>()
        for entry in entries {
            used.formUnion(checkPlaceholders(entry.value, path: SpecReader.join(path, entry.key), known: known, reported: &reported))
        }
        return used
    }

    mutating func checkPlaceholders(_ node: Node, path: String, known: Set<String>, reported: inout Set<String>) -> Set<String> {
        switch node {
        case .scalar(let scalar):
            let names = TemplateText(scalar.string).names
            for name in names where !known.contains(name) && reported.insert(name).inserted {
                error(at: node, path, Self.unknownVariable(name, known: known))
            }
            return Set(names)
        case .mapping(let mapping):
            var used = Set<String>()
            for (key, value) in mapping { used.formUnion(checkPlaceholders(value, path: SpecReader.join(path, key.text ?? "?"), known: known, reported: &reported)) }
            return used
        case .sequence(let items):
            var used = Set<String>()
            for (index, item) in items.enumerated() { used.formUnion(checkPlaceholders(item, path: Self.index(path, index), known: known, reported: &reported)) }
            return used
        case .alias:
            return []
        }
    }

    /// The message for an unknown name: a suggestion when one is close, and the known names (the first 30).
    static func unknownVariable(_ name: String, known: Set<String>) -> String {
        var message = "unknown variable {\(name)}"
        if known.count <= 500, let suggestion = KeySuggestion.suggest(name, among: Array(known)) { message += "; did you mean {\(suggestion)}?" }
        let sorted = known.sorted()
        let shown = sorted.prefix(30).map { "{\($0)}" }.joined(separator: ", ") + (sorted.count > 30 ? " and \(sorted.count - 30) more" : "")
        return message + " Known: \(shown). Write {{ and }} for literal braces"
    }
}

/// A template's nodes with, for each entry, whether it holds anything to substitute: most entries do not, and
/// ten thousand jobs then share them instead of copying.
struct TemplateNodes {
    let template: JobTemplate
    let defaults: [MappingEntry]
    let batchMeta: Node?
    /// False for a file that uses none of vars, matrix, takes or rows: its text is used as written.
    let substitutes: Bool
    private let ownVaries: [Bool]
    private let defaultsVary: [Bool]
    let batchMetaVaries: Bool

    init(template: JobTemplate, defaults: [MappingEntry], batchMeta: Node?, substitutes: Bool = true) {
        self.template = template
        self.defaults = defaults
        self.batchMeta = batchMeta
        self.substitutes = substitutes
        ownVaries = template.fields.map { substitutes && Self.varies($0.value) }
        defaultsVary = defaults.map { substitutes && Self.varies($0.value) }
        batchMetaVaries = substitutes && (batchMeta.map(Self.varies) ?? false)
    }

    func substitutedOwn(_ values: [String: String]) -> [MappingEntry] {
        var entries: [MappingEntry] = []
        entries.reserveCapacity(ownVaries.count)
        for (entry, varies) in zip(template.fields, ownVaries) {
            guard varies else {
                entries.append(entry)
                continue
            }
            // A value written into a job's name may hold what a name cannot (16:9): those characters become '-'.
            var escape: ((String) -> String)?
            if entry.key == "name" { escape = { JobNameRule.sanitize($0) } }
            entries.append(MappingEntry(key: entry.key, keyNode: entry.keyNode, value: Self.substitute(entry.value, values, escape: escape)))
        }
        return entries
    }

    func substitutedDefaults(_ values: [String: String]) -> [MappingEntry] {
        zip(defaults, defaultsVary).map { pair -> MappingEntry in
            pair.1 ? MappingEntry(key: pair.0.key, keyNode: pair.0.keyNode, value: Self.substitute(pair.0.value, values)) : pair.0
        }
    }

    /// Whether any string in `node` renders differently from how it is written.
    static func varies(_ node: Node) -> Bool {
        switch node {
        case .scalar(let scalar): return !TemplateText(scalar.string).isPlain
        case .mapping(let mapping): return mapping.contains { varies($0.value) }
        case .sequence(let items): return items.contains(where: varies)
        case .alias: return false
        }
    }

    /// `node` with every string rendered; keys, positions and styles are kept, so errors point where it was written.
    static func substitute(_ node: Node, _ values: [String: String], escape: ((String) -> String)? = nil) -> Node {
        switch node {
        case .scalar(var scalar):
            let text = TemplateText(scalar.string)
            guard !text.isPlain else { return node }
            let style = scalar.style
            scalar.string = text.render(values, escape: escape)
            scalar.style = style
            return .scalar(scalar)
        case .mapping(let mapping):
            let pairs = mapping.map { ($0.key, substitute($0.value, values, escape: escape)) }
            return .mapping(Node.Mapping(pairs, mapping.tag, mapping.style, mapping.mark))
        case .sequence(let items):
            return .sequence(Node.Sequence(items.map { substitute($0, values, escape: escape) }, items.tag, items.style, items.mark))
        case .alias:
            return node
        }
    }
}
