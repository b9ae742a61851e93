import Yams

/// What one file varies over (`vars:`, `matrix:`, `rows:`, `takes:`), read once before any job is made, so the
/// number of jobs is known, and refused over the limit, before a single one is expanded.
struct SpecExpansion {
    /// One `matrix:` key and its values; a key naming a job field sets that field, any other is a variable.
    struct Axis {
        let key: String
        let keyNode: Node
        let values: [Node]
        let setsField: Bool
        /// Each value as text, for `{key}`: a list's items joined with commas.
        let texts: [String]
    }

    /// The `rows:` CSV file: one combination per record.
    struct Rows {
        /// The path as the spec wrote it, as messages name the file.
        let written: String
        let node: Node
        let table: CSVTable
        /// The trimmed column names.
        let names: [String]
    }

    /// Every spec limit on one file's expansion: a file is a batch a person reviews, not a database.
    static let maxJobs = 10_000
    /// Names every template may use without declaring them: the take (1…N), the job's index in the file (1…),
    /// and the CSV row (1…, the first record after the header).
    static let builtins = ["take", "index", "row"]
    /// Job fields a matrix key or a CSV column may set; `meta` cannot vary (write `{variables}` in its values).
    static let settableFields = ["name", "prompt", "image_urls", "elements", "duration", "aspect_ratio", "endpoint", "queue_priority", "priority"]

    var variables: [String: String] = [:]
    var axes: [Axis] = []
    var rows: Rows?
    var takes = 1
    /// Where the file's expansion keys are, for the error of a file over the limit.
    var firstKeyNode: Node?

    /// Whether the file uses any of `vars`, `matrix`, `takes`, `rows`: only then are its strings templates.
    var declared = false
    /// False for a file without `matrix`, `rows` or `takes`: each template is one job, named as before.
    var multiplies: Bool { !axes.isEmpty || rows != nil || takes != 1 }

    /// Every name a placeholder may use.
    var knownNames: Set<String> {
        var names = Set(variables.keys).union(["take", "index"]).union(axes.map(\.key))
        if let rows { names.formUnion(rows.names + ["row"]) }
        return names
    }

    /// The names whose value changes from one job of a template to the next, for the unique-name hint.
    func varyingNames(takes: Int) -> [String] {
        let unnameable = ["prompt", "image_urls", "elements", "name"]
        var names = axes.filter { $0.values.count > 1 && !unnameable.contains($0.key) }.map(\.key)
        if let rows, rows.table.records.count > 1 { names.append("row") }
        if takes > 1 { names.append("take") }
        return names
    }

    /// Rows × matrix values × `takes`, saturating rather than overflowing (a hostile file cannot trap).
    func count(takes: Int) -> Int {
        var total = max(takes, 0)
        for factor in axes.map(\.values.count) + [rows?.table.records.count ?? 1] {
            let (product, overflow) = total.multipliedReportingOverflow(by: factor)
            total = overflow ? Int.max : product
        }
        return total
    }

    /// How a file's count came about, e.g. `100 CSV rows × 2 × 50 takes`.
    func countDescription(takes: Int) -> String {
        var factors: [String] = []
        if let rows { factors.append("\(rows.table.records.count) rows of \(rows.written)") }
        if !axes.isEmpty { factors.append(axes.map { "\($0.values.count) \($0.key)" }.joined(separator: " × ")) }
        if takes != 1 { factors.append("\(takes) takes") }
        return factors.joined(separator: " × ")
    }

    /// The `index`-th combination (0-based) of a template with `takes` takes: the last matrix key varies fastest,
    /// takes fastest of all, so `a-1, a-2, b-1, b-2` read in the order a person would write them.
    /// A CSV value is placed at the template's own position (`at`, `path`), its CSV line and column in the path.
    func combination(_ index: Int, takes: Int, at templateNode: Node? = nil, path: String = "") -> SpecCombination {
        var combination = SpecCombination(values: variables)
        var rest = index / takes
        let take = index % takes + 1
        var axisChoices: [(Axis, Int)] = []
        for axis in axes.reversed() {
            axisChoices.append((axis, rest % axis.values.count))
            rest /= axis.values.count
        }
        var labels: [String] = []
        if let rows {
            let record = rows.table.records[rest]
            labels.append("\(rows.written) line \(record[0].line)")
            combination.values["row"] = String(rest + 1)
            for (name, field) in zip(rows.names, record) {
                combination.values[name] = field.text
                guard Self.settableFields.contains(name) else { continue }
                let value = Node.scalar(.init(field.text, .implicit, .doubleQuoted, templateNode?.mark ?? rows.node.mark))
                combination.set(name, keyNode: templateNode ?? rows.node, value: value,
                                place: "\(SpecReader.join(path, name)) from \(rows.written):\(field.line):\(field.column)")
            }
        }
        for (axis, choice) in axisChoices.reversed() {
            combination.values[axis.key] = axis.texts[choice]
            if axis.values.count > 1 || axis.setsField { labels.append("\(axis.key)=\(Self.short(axis.texts[choice]))") }
            if axis.setsField {
                combination.set(axis.key, keyNode: axis.keyNode, value: axis.values[choice], place: "matrix.\(axis.key)[\(choice)]")
            }
        }
        combination.values["take"] = String(take)
        if takes > 1 { labels.append("take=\(take)") }
        combination.label = labels.joined(separator: ", ")
        return combination
    }

    private static func short(_ text: String) -> String {
        text.count <= 40 ? text : String(text.prefix(37)) + "..."
    }
}

/// One expanded job's values: its variables, the fields the matrix or a CSV row set, and how messages name it.
struct SpecCombination {
    var values: [String: String]
    var overrides: [MappingEntry] = []
    var places: [String: String] = [:]
    /// `mood=storm, aspect_ratio=9:16, take=2`, or `prompts.csv line 12, take=2`; empty for a plain job.
    var label = ""

    init(values: [String: String]) { self.values = values }

    mutating func set(_ key: String, keyNode: Node, value: Node, place: String) {
        overrides.append(MappingEntry(key: key, keyNode: keyNode, value: value))
        places[key] = place
    }
}
