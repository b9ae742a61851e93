import Yams

/// One job as a file writes it, before `matrix`, `rows` and `takes` turn it into many.
struct JobTemplate {
    /// Its own fields, without `takes`.
    let fields: [MappingEntry]
    let node: Node
    /// `jobs[2]`, or empty for a file that is one job.
    let path: String
    let index: Int
    let takes: Int
}

/// Expanding templates into jobs: placeholders checked once per template, the count checked against the limit
/// before anything is expanded, then each combination read as an ordinary job, its problems named with it.
extension SpecReader {
    static let maxDistinctProblems = 1000

    mutating func expand(
        _ templates: [JobTemplate], defaults: [MappingEntry], expansion: SpecExpansion, stem: String, single: Bool, context: inout JobContext
    ) -> [JobSpec] {
        let before = errorsFound
        if expansion.declared {
            checkTemplates(templates, defaults: defaults, expansion: expansion, context: context)
        } else {
            warnLiteralBraces(templates, defaults: defaults)
        }
        let multiplies = expansion.multiplies || templates.contains { $0.takes != 1 }
        var total = 0
        for template in templates {
            let (sum, overflow) = total.addingReportingOverflow(expansion.count(takes: template.takes))
            total = overflow ? Int.max : sum
        }
        if total > SpecExpansion.maxJobs {
            let shown = total == Int.max ? "more than \(Int.max)" : total.formatted()
            let sameTakes = templates.allSatisfy { $0.takes == templates[0].takes }
            let how = templates.count == 1 ? expansion.countDescription(takes: templates[0].takes)
                : "\(templates.count) jobs × " + expansion.countDescription(takes: sameTakes ? templates[0].takes : 1) + (sameTakes ? "" : ", with takes per job")
            error(at: expansion.firstKeyNode ?? templates.first?.node, "",
                  "this file expands to \(shown) jobs (\(how)); one file may make at most \(SpecExpansion.maxJobs.formatted()). Split it into several files")
            return []
        }
        guard errorsFound == before else { return [] }
        context.expansionSummary = multiplies ? summary(templates, expansion: expansion, jobs: total) : nil
        var run = ExpansionRun(stem: stem, single: single, multiplies: multiplies)
        for template in templates where diagnostics.count < Self.maxDistinctProblems {
            expand(template, defaults: defaults, expansion: expansion, run: &run, context: &context)
        }
        if diagnostics.count >= Self.maxDistinctProblems {
            error(at: templates.first?.node, "", "more than \(Self.maxDistinctProblems) problems; the rest of the file was not checked. Fix these first")
        }
        run.folder.finish(&self)
        return run.jobs
    }

    /// What expanding a file's templates carries from one to the next.
    struct ExpansionRun {
        let stem: String
        let single: Bool
        let multiplies: Bool
        var folder = DiagnosticFolder()
        var jobs: [JobSpec] = []
        var names = NameRegistry()
        var jobIndex = 0

        /// The job's name when its template gives none: the file's, `<file>-N` in a batch, or `<file>-<index>` for
        /// expanded jobs, the stem shortened so the whole stays a valid name.
        func defaultName(template: JobTemplate) -> String {
            guard multiplies else { return single ? stem : "\(stem)-\(template.index + 1)" }
            let suffix = "-\(jobIndex)"
            return String(stem.prefix(JobNameRule.maxLength - suffix.count)) + suffix
        }
    }

    /// Every combination of one template, read as jobs. A template whose first combinations all fail stops early:
    /// the same mistake would be found again in each of the rest.
    private mutating func expand(
        _ template: JobTemplate, defaults: [MappingEntry], expansion: SpecExpansion, run: inout ExpansionRun, context: inout JobContext
    ) {
        let nodes = TemplateNodes(template: template, defaults: defaults, batchMeta: context.batchMetaNode, substitutes: expansion.declared)
        let count = expansion.count(takes: template.takes)
        var failedInARow = 0
        for index in 0..<count where diagnostics.count < Self.maxDistinctProblems {
            if failedInARow == Self.failuresBeforeGivingUp && index == failedInARow {
                error(at: template.node, template.path, "its first \(failedInARow) combinations all have problems; the other \(count - index) were not checked")
                break
            }
            run.jobIndex += 1
            var combination = expansion.combination(index, takes: template.takes, at: template.node, path: template.path)
            combination.values["index"] = String(run.jobIndex)
            let start = diagnostics.count
            let job = readCombination(nodes, combination, defaultName: run.defaultName(template: template), context: &context)
            run.folder.fold(&self, from: start, label: combination.label)
            guard let job else {
                failedInARow += 1
                continue
            }
            run.names.add(job.name, template: template, label: combination.label)
            run.jobs.append(job)
        }
        reportRepeatedNames(&run.names, template: template, expansion: expansion)
    }

    static let failuresBeforeGivingUp = 20

    /// Placeholders and conflicts, checked once per template before anything is expanded.
    private mutating func checkTemplates(_ templates: [JobTemplate], defaults: [MappingEntry], expansion: SpecExpansion, context: JobContext) {
        let known = expansion.knownNames
        var used = Set<String>()
        var reported = Set<String>()
        for template in templates {
            checkConflicts(template, expansion: expansion)
            used.formUnion(checkPlaceholders(template.fields, path: template.path, known: known, reported: &reported))
        }
        used.formUnion(checkPlaceholders(defaults, path: "defaults", known: known, reported: &reported))
        if let meta = context.batchMetaNode { used.formUnion(checkPlaceholders(meta, path: "meta", known: known, reported: &reported)) }
        for axis in expansion.axes where axis.setsField {
            for (index, value) in axis.values.enumerated() {
                used.formUnion(checkPlaceholders(value, path: Self.index("matrix.\(axis.key)", index), known: known, reported: &reported))
            }
        }
        warnUnused(expansion, used: used)
    }

    /// A file without vars, matrix, takes or rows is read as written, as before they existed; text that looks like
    /// a placeholder there is worth a warning, since it goes to fal as it is.
    private mutating func warnLiteralBraces(_ templates: [JobTemplate], defaults: [MappingEntry]) {
        for (entries, path) in templates.map({ ($0.fields, $0.path) }) + [(defaults, "defaults")] {
            for entry in entries where entry.key != "name" {
                guard case .scalar(let scalar) = entry.value, let name = TemplateText(scalar.string).names.first else { continue }
                warning(at: entry.value, SpecReader.join(path, entry.key),
                        "{\(name)} is sent as written: placeholders are filled in only in files that use vars:, matrix:, takes: or rows:")
            }
        }
    }

    /// One combination of a template read as an ordinary job.
    private mutating func readCombination(
        _ nodes: TemplateNodes, _ combination: SpecCombination, defaultName: String, context: inout JobContext
    ) -> JobSpec? {
        if let meta = nodes.batchMeta, nodes.batchMetaVaries {
            context.batchMeta = readMetaMapping(TemplateNodes.substitute(meta, combination.values), path: "meta")
        }
        let own = nodes.substitutedOwn(combination.values)
        let defaults = nodes.substitutedDefaults(combination.values)
        // A matrix value that sets a field is a template too (`prompt: ["{subject} at dawn", …]`); a CSV cell is data.
        let overrides = combination.overrides.map { entry -> MappingEntry in
            guard nodes.substitutes, combination.places[entry.key]?.hasPrefix("matrix.") == true, TemplateNodes.varies(entry.value) else { return entry }
            return MappingEntry(key: entry.key, keyNode: entry.keyNode, value: TemplateNodes.substitute(entry.value, combination.values))
        }
        return readJob(own, node: nodes.template.node, path: nodes.template.path, defaults: defaults, name: defaultName,
                       overrides: (overrides, combination.places), context: &context)
    }

    /// A field both written in a job and set by the matrix or a CSV column: which one was meant is a guess, so neither.
    private mutating func checkConflicts(_ template: JobTemplate, expansion: SpecExpansion) {
        for entry in template.fields {
            if let axis = expansion.axes.first(where: { $0.setsField && $0.key == entry.key }) {
                error(at: entry.keyNode, SpecReader.join(template.path, entry.key),
                      "'\(entry.key)' is set by matrix.\(axis.key) too; give it in one place (a job's own value would silently win or lose)")
            }
            if let rows = expansion.rows, rows.names.contains(entry.key), SpecExpansion.settableFields.contains(entry.key) {
                error(at: entry.keyNode, SpecReader.join(template.path, entry.key),
                      "'\(entry.key)' is set by the column \(entry.key) of \(rows.written) too; give it in one place")
            }
        }
    }

    /// Matrix keys and CSV columns used nowhere: their values would make jobs that differ in nothing but their names.
    private mutating func warnUnused(_ expansion: SpecExpansion, used: Set<String>) {
        for axis in expansion.axes where !axis.setsField && axis.values.count > 1 && !used.contains(axis.key) {
            warning(at: axis.keyNode, SpecReader.join("matrix", axis.key),
                    "{\(axis.key)} is used nowhere, so its \(axis.values.count) values make identical jobs, each paid for; write {\(axis.key)} in a prompt, or use takes: for repeats")
        }
        guard let rows = expansion.rows else { return }
        for name in rows.names where !SpecExpansion.settableFields.contains(name) && !used.contains(name) {
            warning(at: rows.node, "rows", "the column '\(name)' of \(rows.written) is used nowhere ({\(name)} appears in no job)")
        }
    }

    private func summary(_ templates: [JobTemplate], expansion: SpecExpansion, jobs: Int) -> SpecExpansionSummary {
        SpecExpansionSummary(
            templates: templates.count, rowsFile: expansion.rows?.written, rows: expansion.rows?.table.records.count,
            matrix: expansion.axes.map { .init(key: $0.key, values: $0.values.count) }, takes: expansion.takes,
            takesVary: templates.contains { $0.takes != expansion.takes }, jobs: jobs)
    }
}
