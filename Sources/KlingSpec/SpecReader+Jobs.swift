import Foundation
import KlingCore
import Yams

/// What job reading needs besides the nodes: where local images are, the limits, and images already checked.
struct JobContext {
    /// The folder relative image paths start from (see `SpecValidator.imageBase(forSpecAt:)`).
    let directory: String
    /// How messages name that folder: the spec file's own, the drop folder it was dropped into, or `--base`.
    var baseName = "the spec file's folder"
    let options: SpecValidator.Options
    /// The batch's top-level `meta:`, under every job's own.
    var batchMeta: [String: JSONValue] = [:]
    /// The node it was read from, read again per expanded job when it holds `{variables}`.
    var batchMetaNode: Node?
    /// Bytes besides the spec's own that make up what it means (a `rows:` file), hashed into its identity.
    var identityExtras: [UInt8] = []
    /// How the jobs came about, when the file multiplies them.
    var expansionSummary: SpecExpansionSummary?
    /// The batch's `on_complete:`: the name of a hook in the runner's config, or `none`.
    var onComplete: String?
    /// Images checked by earlier files of the same validator.
    let imageCache: ImageInspectionCache?
    /// Checked local images by resolved path, so a file used by many jobs is read and hashed once.
    var images: [String: Result<LocalImage, ImageProblem>] = [:]
    private var roots: [String]?

    init(directory: String, options: SpecValidator.Options, imageCache: ImageInspectionCache? = nil) {
        self.directory = directory
        self.options = options
        self.imageCache = imageCache
    }

    /// The folders images may come from with links resolved, worked out once per file rather than per image.
    mutating func resolvedRoots() -> [String] {
        if let roots { return roots }
        let resolved = ([directory] + options.allowedRoots).compactMap(SpecReader.realPath)
        roots = resolved
        return resolved
    }
}

extension SpecReader {
    static let jobKeys = ["name", "prompt", "image_urls", "elements", "duration", "aspect_ratio", "endpoint", "queue_priority", "priority", "meta", "takes"]
    static let defaultKeys = ["image_urls", "elements", "duration", "aspect_ratio", "endpoint", "queue_priority", "priority", "meta"]
    static let batchKeys = ["defaults", "jobs", "meta", "priority", "queue_priority", "on_complete"] + expansionKeys
    /// Job fields a batch may also set at its top level, for all its jobs, as if in `defaults:`.
    static let batchWideKeys = ["meta", "takes", "priority", "queue_priority"]

    /// Reads a whole file: one job at the top level, or a batch under `jobs:` with optional `defaults:`; either may
    /// multiply its jobs with `vars:`, `matrix:`, `rows:` and `takes:`.
    mutating func readFile(_ root: Node, stem: String, context: inout JobContext) -> [JobSpec] {
        guard case .mapping(let mapping) = root else {
            error(at: root, "", "the file must be a mapping with a prompt (one job) or with jobs: (a batch), not \(root.kindName)")
            return []
        }
        let top = entries(of: mapping, path: "").filter { !$0.key.hasPrefix("x-") }
        let expansionEntries = top.filter { Self.expansionKeys.contains($0.key) }
        if let hook = top.first(where: { $0.key == "on_complete" }) { context.onComplete = readOnComplete(hook.value) }
        guard let jobsEntry = top.first(where: { $0.key == "jobs" }) else {
            return readSingleJob(top, root: root, expansionEntries: expansionEntries, stem: stem, context: &context)
        }
        let defaults = readBatchTop(top, context: &context)
        var expansion = readExpansion(expansionEntries, context: &context)
        guard case .sequence(let list) = jobsEntry.value else {
            error(at: jobsEntry.value, "jobs", "jobs must be a list of jobs (each starting with '- '), not \(jobsEntry.value.kindName)")
            return []
        }
        guard !list.isEmpty else {
            error(at: jobsEntry.value, "jobs", "jobs is empty; a batch needs at least one job")
            return []
        }
        let templates = readTemplates(list, expansion: &expansion)
        guard let expansion else { return [] }
        return expand(templates, defaults: defaults, expansion: expansion, stem: stem, single: false, context: &context)
    }

    /// A file that is one job: its fields at the top level.
    private mutating func readSingleJob(
        _ top: [MappingEntry], root: Node, expansionEntries: [MappingEntry], stem: String, context: inout JobContext
    ) -> [JobSpec] {
        if let defaults = top.first(where: { $0.key == "defaults" }) {
            error(at: defaults.keyNode, "defaults", "defaults: belongs to a batch; add the jobs under jobs:, or put these fields in the job itself")
        }
        let fields = top.filter { $0.key != "defaults" && $0.key != "on_complete" && !Self.expansionKeys.contains($0.key) }
        rejectUnknownKeys(fields, allowed: Self.jobKeys.filter { $0 != "takes" }, path: "", what: "a job", alsoSuggest: ["jobs"] + Self.expansionKeys)
        guard let expansion = readExpansion(expansionEntries, context: &context) else { return [] }
        let template = JobTemplate(fields: fields, node: root, path: "", index: 0, takes: expansion.takes)
        return expand([template], defaults: [], expansion: expansion, stem: stem, single: true, context: &context)
    }

    /// A batch's top level beside `jobs:`: its meta, and the defaults every job gets (`defaults:` plus the
    /// batch-wide `priority`/`queue_priority`).
    private mutating func readBatchTop(_ top: [MappingEntry], context: inout JobContext) -> [MappingEntry] {
        for entry in top where Self.jobKeys.contains(entry.key) && !Self.batchWideKeys.contains(entry.key) {
            error(at: entry.keyNode, entry.key, "'\(entry.key)' cannot stand beside jobs:; a file holds one job or a batch. Move it into each job, or into defaults:")
        }
        rejectUnknownKeys(top.filter { !Self.jobKeys.contains($0.key) || Self.batchWideKeys.contains($0.key) }, allowed: Self.batchKeys, path: "", what: "a batch")
        if let meta = top.first(where: { $0.key == "meta" }), !meta.value.isNull {
            context.batchMeta = readMetaMapping(meta.value, path: "meta")
            context.batchMetaNode = meta.value
        }
        var defaults = readDefaults(top.first { $0.key == "defaults" })
        for entry in top where entry.key == "priority" || entry.key == "queue_priority" {
            if defaults.contains(where: { $0.key == entry.key }) {
                error(at: entry.keyNode, entry.key, "'\(entry.key)' is given both here and in defaults:; keep one")
            } else {
                defaults.append(entry)
            }
        }
        return defaults
    }

    /// The batch's job templates, each with its own `takes:` when it sets one.
    private mutating func readTemplates(_ list: Node.Sequence, expansion: inout SpecExpansion?) -> [JobTemplate] {
        var templates: [JobTemplate] = []
        for (index, item) in list.enumerated() {
            let path = Self.index("jobs", index)
            guard case .mapping(let jobMapping) = item else {
                error(at: item, path, "each job must be a mapping with at least a prompt, not \(item.kindName)")
                continue
            }
            let fields = entries(of: jobMapping, path: path)
            rejectUnknownKeys(fields, allowed: Self.jobKeys, path: path, what: "a job")
            var takes = expansion?.takes ?? 1
            if let entry = fields.first(where: { $0.key == "takes" }), !entry.value.isNull {
                takes = readTakes(entry.value, path: SpecReader.join(path, "takes")) ?? takes
                expansion?.declared = true
            }
            templates.append(JobTemplate(fields: fields.filter { $0.key != "takes" }, node: item, path: path, index: index, takes: takes))
        }
        return templates
    }

    /// `on_complete:` names one of the hooks the operator configured (`hooks:` in the config file), or `none`. A
    /// spec never carries a command: whoever may drop a file must not run programs as the daemon.
    mutating func readOnComplete(_ node: Node) -> String? {
        guard let text = node.text, !node.isNull, !text.isEmpty,
              text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
            error(at: node, "on_complete", "on_complete names a hook from the config file's hooks: (e.g. on_complete: upload), or none; a spec cannot give a command")
            return nil
        }
        return text
    }

    /// The batch's `defaults:` entries that may be defaults (errors are reported for the rest).
    mutating func readDefaults(_ entry: MappingEntry?) -> [MappingEntry] {
        guard let entry, !entry.value.isNull else { return [] }
        guard case .mapping(let defaultsMapping) = entry.value else {
            error(at: entry.value, "defaults", "defaults must be a mapping of fields shared by the jobs, not \(entry.value.kindName)")
            return []
        }
        let defaults = entries(of: defaultsMapping, path: "defaults")
        for item in defaults where item.key == "name" || item.key == "prompt" {
            error(at: item.keyNode, "defaults.\(item.key)", "'\(item.key)' cannot be a default; each job has its own")
        }
        rejectUnknownKeys(defaults.filter { $0.key != "name" && $0.key != "prompt" }, allowed: Self.defaultKeys, path: "defaults", what: "defaults")
        return defaults.filter { Self.defaultKeys.contains($0.key) }
    }

    /// Reads one job's fields (own fields over `defaults`); nil when any is wrong.
    mutating func readJob(
        _ own: [MappingEntry], node: Node, path: String, defaults: [MappingEntry], name defaultName: String,
        overrides: ([MappingEntry], [String: String]) = ([], [:]), context: inout JobContext
    ) -> JobSpec? {
        let before = errorsFound
        let fields = JobFields(own: own, defaults: defaults, path: path, node: node, overrides: overrides.0, overridePlaces: overrides.1)
        let name = readName(fields) ?? defaultName
        let (prompt, promptNode) = readPrompt(fields)
        let duration = readDuration(fields)
        let aspect = readAspectRatio(fields)
        let endpoint = readEndpoint(fields)
        let queuePriority = readQueuePriority(fields)
        let priority = readPriority(fields)
        let meta = readMeta(fields, batch: context.batchMeta)
        let (imageURLs, imageNodes) = readImageURLs(fields, context: &context)
        let (elements, elementNodes) = readElements(fields, context: &context)

        let inputs = imageNodes.count + elementNodes.count
        if inputs > SpecValidator.Options.maxInputs {
            error(at: fields.entry("elements")?.keyNode ?? fields.entry("image_urls")?.keyNode ?? node, path,
                  "\(inputs) inputs given (\(elementNodes.count) elements + \(imageNodes.count) image URLs); the model takes at most \(SpecValidator.Options.maxInputs)")
        }
        if !prompt.isEmpty {
            checkReferences(prompt: prompt, promptNode: promptNode, promptPath: fields.place("prompt"), imageNodes: imageNodes,
                            imagesPath: fields.place("image_urls"), elementNodes: elementNodes, elementsPath: fields.place("elements"))
        }
        guard errorsFound == before else { return nil }
        return JobSpec(name: name, prompt: prompt, imageURLs: imageURLs, elements: elements, duration: duration, aspectRatio: aspect, endpoint: endpoint, queuePriority: queuePriority, priority: priority, meta: meta)
    }

    /// The items of a list; a single value stands for a list of one, as people often write it.
    mutating func listItems(_ node: Node, path: String, what: String) -> [Node] {
        switch node {
        case .sequence(let list): return Array(list)
        case .scalar: return [node]
        default:
            error(at: node, path, "\(what) must be a list, not \(node.kindName)")
            return []
        }
    }

    /// An element: a mapping with `frontal_image_url` and optional `reference_image_urls`, or just a frontal image.
    mutating func readElement(_ node: Node, path: String, context: inout JobContext) -> ElementSpec? {
        if case .scalar = node, !node.isNull {
            return readImage(node, path: path, context: &context).map { ElementSpec(frontal: $0) }
        }
        guard case .mapping(let mapping) = node else {
            error(at: node, path, "an element is a mapping with frontal_image_url (and optional reference_image_urls), not \(node.kindName)")
            return nil
        }
        let fields = entries(of: mapping, path: path)
        rejectUnknownKeys(fields, allowed: ["frontal_image_url", "reference_image_urls"], path: path, what: "an element")
        guard let frontalEntry = fields.first(where: { $0.key == "frontal_image_url" }), !frontalEntry.value.isNull else {
            error(at: node, SpecReader.join(path, "frontal_image_url"), "an element needs frontal_image_url: a front view of the character or object")
            return nil
        }
        let frontal = readImage(frontalEntry.value, path: SpecReader.join(path, "frontal_image_url"), context: &context)
        var references: [ImageSource] = []
        var complete = frontal != nil
        if let entry = fields.first(where: { $0.key == "reference_image_urls" }), !entry.value.isNull {
            let referencesPath = SpecReader.join(path, "reference_image_urls")
            for (index, item) in listItems(entry.value, path: referencesPath, what: "reference_image_urls").enumerated() {
                if let image = readImage(item, path: Self.index(referencesPath, index), context: &context) {
                    references.append(image)
                } else {
                    complete = false
                }
            }
        }
        guard complete, let frontal else { return nil }
        return ElementSpec(frontal: frontal, references: references)
    }

    /// `@ElementN` / `@ImageN` must point at given inputs; given inputs never mentioned are worth a warning.
    mutating func checkReferences(
        prompt: String, promptNode: Node, promptPath: String, imageNodes: [Node], imagesPath: String,
        elementNodes: [Node], elementsPath: String
    ) {
        let references = PromptReferences(prompt: prompt)
        for (word, numbers, count, noun) in [("Element", references.elements, elementNodes.count, "element"), ("Image", references.images, imageNodes.count, "image URL")] {
            for number in numbers where number < 1 || number > count {
                let given = count == 0 ? "none is given" : "only \(count) \(count == 1 ? "is" : "are") given"
                error(at: promptNode, promptPath, "@\(word)\(number) refers to \(noun) \(number), but \(given); @\(word)N counts from 1 in the order of \(word == "Element" ? "elements" : "image_urls")")
            }
        }
        for (index, node) in imageNodes.enumerated() where !references.images.contains(index + 1) {
            warning(at: node, Self.index(imagesPath, index), "given but never referenced in the prompt as @Image\(index + 1)")
        }
        for (index, node) in elementNodes.enumerated() where !references.elements.contains(index + 1) {
            warning(at: node, Self.index(elementsPath, index), "given but never referenced in the prompt as @Element\(index + 1)")
        }
    }
}
