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
        var used = Set<String>()
        for template in templates {
            checkConflicts(template, expansion: expansion)
            used.formUnion(checkPlaceholders(template.fields, path: template.path, known: expansion.knownNames))
        }
        used.formUnion(checkPlaceholders(defaults, path: "defaults", known: expansion.knownNames))
        if let meta = context.batchMetaNode { used.formUnion(checkPlaceholders(meta, path: "meta", known: expansion.knownNames)) }
        warnUnused(expansion, used: used)
        let multiplies = expansion.multiplies || templates.contains { $0.takes != 1 }
        var total = 0
        for template in templates {
            let (sum, overflow) = total.addingReportingOverflow(expansion.count(takes: template.takes))
            total = overflow ? Int.max : sum
        }
        if total > SpecExpansion.maxJobs {
            let shown = total == Int.max ? "more than \(Int.max)" : total.formatted()
            let how = templates.count == 1 ? expansion.countDescription(takes: templates[0].takes) : "\(templates.count) jobs, each × " + expansion.countDescription(takes: expansion.takes)
            error(at: expansion.firstKeyNode ?? templates.first?.node, "",
                  "this file expands to \(shown) jobs (\(how)); one file may make at most \(SpecExpansion.maxJobs.formatted()). Split it into several files")
            return []
        }
        guard errorsFound == before else { return [] }
        context.expansionSummary = multiplies ? summary(templates, expansion: expansion, jobs: total) : nil

        var folder = DiagnosticFolder()
        var jobs: [JobSpec] = []
        jobs.reserveCapacity(total)
        var names = NameRegistry()
        var jobIndex = 0
        templates: for template in templates {
            let nodes = TemplateNodes(template: template, defaults: defaults, batchMeta: context.batchMetaNode)
            for index in 0..<expansion.count(takes: template.takes) {
                // Distinct problems past this many are noise: the first ones are what to fix.
                if diagnostics.count >= Self.maxDistinctProblems {
                    error(at: template.node, template.path, "more than \(Self.maxDistinctProblems) problems; the rest of the file was not checked. Fix these first")
                    break templates
                }
                jobIndex += 1
                var combination = expansion.combination(index, takes: template.takes, at: template.node, path: template.path)
                combination.values["index"] = String(jobIndex)
                let start = diagnostics.count
                let name = multiplies ? "\(stem)-\(jobIndex)" : (single ? stem : "\(stem)-\(template.index + 1)")
                let job = readCombination(nodes, combination, defaultName: name, context: &context)
                folder.fold(&self, from: start, label: combination.label)
                if let job {
                    names.add(job.name, template: template, label: combination.label)
                    jobs.append(job)
                }
            }
            reportRepeatedNames(&names, template: template, expansion: expansion)
        }
        folder.finish(&self)
        return jobs
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
        return readJob(own, node: nodes.template.node, path: nodes.template.path, defaults: defaults, name: defaultName,
                       overrides: (combination.overrides, combination.places), context: &context)
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
