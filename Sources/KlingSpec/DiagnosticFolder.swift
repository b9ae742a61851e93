/// Folds the same problem found in many expanded jobs into one message that names the first combination and
/// counts the rest, so a typo in a template of 10,000 jobs is one line, not 10,000.
struct DiagnosticFolder {
    private var first: [SpecDiagnostic: Int] = [:]
    private var bases: [Int: (message: String, label: String)] = [:]
    private var more: [Int: Int] = [:]

    /// Moves the diagnostics `reader` gained since `start` into the fold, naming `label` on each one seen first.
    mutating func fold(_ reader: inout SpecReader, from start: Int, label: String) {
        guard start < reader.diagnostics.count else { return }
        let new = reader.diagnostics[start...]
        reader.diagnostics.removeSubrange(start...)
        for diagnostic in new {
            if let index = first[diagnostic] {
                more[index, default: 0] += 1
                continue
            }
            let index = reader.diagnostics.count
            first[diagnostic] = index
            bases[index] = (diagnostic.message, label)
            var labelled = diagnostic
            if !label.isEmpty { labelled.message += " (in \(label))" }
            reader.diagnostics.append(labelled)
        }
    }

    /// Adds to each folded message how many other jobs had it.
    func finish(_ reader: inout SpecReader) {
        for (index, count) in more {
            guard let base = bases[index] else { continue }
            let others = "\(count) other job\(count == 1 ? "" : "s")"
            reader.diagnostics[index].message = base.label.isEmpty
                ? "\(base.message) (and in \(others))" : "\(base.message) (in \(base.label), and in \(others))"
        }
    }
}

/// Expanded job names seen so far, and the repeats of the current template, reported once with a count.
struct NameRegistry {
    private var seen: [String: String] = [:]
    private(set) var repeats = 0
    private(set) var firstRepeat: (name: String, earlier: String, label: String)?

    /// Records `name`; a repeat is counted instead (the first one is kept for the message).
    mutating func add(_ name: String, template: JobTemplate, label: String) {
        let here = template.path.isEmpty ? "the job" : template.path
        let described = label.isEmpty ? here : "\(here) (\(label))"
        if let earlier = seen[name] {
            repeats += 1
            if firstRepeat == nil { firstRepeat = (name, earlier, label) }
        } else {
            seen[name] = described
        }
    }

    /// Starts counting the next template's repeats.
    mutating func nextTemplate() {
        repeats = 0
        firstRepeat = nil
    }
}

extension SpecReader {
    /// One error for a template whose expanded names repeat, with the names it should vary by.
    mutating func reportRepeatedNames(_ names: inout NameRegistry, template: JobTemplate, expansion: SpecExpansion) {
        defer { names.nextTemplate() }
        guard let repeated = names.firstRepeat else { return }
        let nameEntry = template.fields.first { $0.key == "name" }
        var message = "the name '\(repeated.name)'" + (repeated.label.isEmpty ? "" : " (in \(repeated.label))")
            + " is already used by \(repeated.earlier); names must be unique in a file"
        if names.repeats > 1 { message += " (\(names.repeats) expanded names repeat)" }
        if let nameEntry, let text = nameEntry.value.text {
            let written = Set(TemplateText(text).names)
            let missing = expansion.varyingNames(takes: template.takes).filter { !written.contains($0) }
            if !missing.isEmpty { message += "; add \(missing.map { "{\($0)}" }.joined(separator: " and ")) to the name" }
        }
        error(at: nameEntry?.value ?? template.node, SpecReader.join(template.path, "name"), message)
    }
}
