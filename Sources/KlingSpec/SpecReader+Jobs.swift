import Foundation
import Yams

/// What job reading needs besides the nodes: where local images are, the limits, and images already checked.
struct JobContext {
    let directory: String
    let options: SpecValidator.Options
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
    static let jobKeys = ["name", "prompt", "image_urls", "elements", "duration", "aspect_ratio", "endpoint"]
    static let defaultKeys = ["image_urls", "elements", "duration", "aspect_ratio", "endpoint"]
    static let batchKeys = ["defaults", "jobs"]

    /// Reads a whole file: one job at the top level, or a batch under `jobs:` with optional `defaults:`.
    mutating func readFile(_ root: Node, stem: String, context: inout JobContext) -> [JobSpec] {
        guard case .mapping(let mapping) = root else {
            error(at: root, "", "the file must be a mapping with a prompt (one job) or with jobs: (a batch), not \(root.kindName)")
            return []
        }
        let top = entries(of: mapping, path: "").filter { !$0.key.hasPrefix("x-") }
        guard let jobsEntry = top.first(where: { $0.key == "jobs" }) else {
            if let defaults = top.first(where: { $0.key == "defaults" }) {
                error(at: defaults.keyNode, "defaults", "defaults: belongs to a batch; add the jobs under jobs:, or put these fields in the job itself")
            }
            rejectUnknownKeys(top.filter { $0.key != "defaults" }, allowed: Self.jobKeys, path: "", what: "a job", alsoSuggest: ["jobs"])
            return readJob(top, node: root, path: "", defaults: [], name: stem, context: &context).map { [$0] } ?? []
        }
        for entry in top where Self.jobKeys.contains(entry.key) {
            error(at: entry.keyNode, entry.key, "'\(entry.key)' cannot stand beside jobs:; a file holds one job or a batch. Move it into each job, or into defaults:")
        }
        rejectUnknownKeys(top.filter { !Self.jobKeys.contains($0.key) }, allowed: Self.batchKeys, path: "", what: "a batch")

        var defaults: [MappingEntry] = []
        if let entry = top.first(where: { $0.key == "defaults" }), !entry.value.isNull {
            if case .mapping(let defaultsMapping) = entry.value {
                defaults = entries(of: defaultsMapping, path: "defaults")
                for item in defaults where item.key == "name" || item.key == "prompt" {
                    error(at: item.keyNode, "defaults.\(item.key)", "'\(item.key)' cannot be a default; each job has its own")
                }
                rejectUnknownKeys(defaults.filter { $0.key != "name" && $0.key != "prompt" }, allowed: Self.defaultKeys, path: "defaults", what: "defaults")
                defaults = defaults.filter { Self.defaultKeys.contains($0.key) }
            } else {
                error(at: entry.value, "defaults", "defaults must be a mapping of fields shared by the jobs, not \(entry.value.kindName)")
            }
        }

        guard case .sequence(let list) = jobsEntry.value else {
            error(at: jobsEntry.value, "jobs", "jobs must be a list of jobs (each starting with '- '), not \(jobsEntry.value.kindName)")
            return []
        }
        guard !list.isEmpty else {
            error(at: jobsEntry.value, "jobs", "jobs is empty; a batch needs at least one job")
            return []
        }
        var jobs: [JobSpec] = []
        var namesSeen: [String: Int] = [:]
        for (index, item) in list.enumerated() {
            let path = Self.index("jobs", index)
            guard case .mapping(let jobMapping) = item else {
                error(at: item, path, "each job must be a mapping with at least a prompt, not \(item.kindName)")
                continue
            }
            let fields = entries(of: jobMapping, path: path)
            rejectUnknownKeys(fields, allowed: Self.jobKeys, path: path, what: "a job")
            guard let job = readJob(fields, node: item, path: path, defaults: defaults, name: "\(stem)-\(index + 1)", context: &context) else { continue }
            if let first = namesSeen[job.name] {
                let nameNode = fields.first { $0.key == "name" }?.value ?? item
                error(at: nameNode, SpecReader.join(path, "name"), "the name '\(job.name)' is already used by jobs[\(first)]; names must be unique in a file")
            } else {
                namesSeen[job.name] = index
            }
            jobs.append(job)
        }
        return jobs
    }

    /// Reads one job's fields (own fields over `defaults`); nil when any is wrong.
    mutating func readJob(
        _ own: [MappingEntry], node: Node, path: String, defaults: [MappingEntry], name defaultName: String,
        context: inout JobContext
    ) -> JobSpec? {
        let before = diagnostics.filter(\.isError).count
        func field(_ key: String) -> MappingEntry? {
            own.first { $0.key == key } ?? defaults.first { $0.key == key }
        }
        func place(_ key: String) -> String {
            own.contains { $0.key == key } ? SpecReader.join(path, key) : "defaults.\(key)"
        }

        var name = defaultName
        if let entry = field("name"), !entry.value.isNull {
            if let text = entry.value.text {
                if let problem = JobNameRule.problem(with: text) { error(at: entry.value, place("name"), problem) } else { name = text }
            } else {
                error(at: entry.value, place("name"), "a name is a single word, not \(entry.value.kindName)")
            }
        }

        var prompt = ""
        var promptNode: Node = node
        if let entry = field("prompt"), !entry.value.isNull {
            promptNode = entry.value
            if let text = entry.value.text {
                prompt = text.trimmingCharacters(in: .whitespacesAndNewlines)
                let length = prompt.unicodeScalars.count
                if prompt.isEmpty {
                    error(at: entry.value, place("prompt"), "the prompt is empty; describe the video to make")
                } else if length > SpecValidator.Options.maxPromptLength {
                    error(at: entry.value, place("prompt"), "the prompt has \(length) characters; at most \(SpecValidator.Options.maxPromptLength) are allowed")
                }
            } else {
                error(at: entry.value, place("prompt"), "the prompt must be text, not \(entry.value.kindName); use a block (prompt: >) for long text")
            }
        } else {
            error(at: field("prompt")?.keyNode ?? node, SpecReader.join(path, "prompt"), "a prompt is required: the text that describes the video")
        }

        var duration = 5
        if let entry = field("duration"), !entry.value.isNull {
            switch SpecValues.duration(entry.value) {
            case .success(let seconds): duration = seconds
            case .failure(let problem): error(at: entry.value, place("duration"), problem.message)
            }
        }

        var aspect = AspectRatio.landscape
        if let entry = field("aspect_ratio"), !entry.value.isNull {
            if let text = entry.value.text, let ratio = AspectRatio(lenient: text) {
                aspect = ratio
            } else {
                let shown = entry.value.text.map { "'\($0)'" } ?? entry.value.kindName
                error(at: entry.value, place("aspect_ratio"), "\(shown) is not an aspect ratio the model makes; allowed: 16:9, 9:16, 1:1")
            }
        }

        var endpoint = KnownEndpoints.default
        if let entry = field("endpoint"), !entry.value.isNull {
            if let text = entry.value.text, KnownEndpoints.all.contains(text) {
                endpoint = text
            } else {
                let shown = entry.value.text.map { "'\($0)'" } ?? entry.value.kindName
                error(at: entry.value, place("endpoint"), "\(shown) is not a Kling O1 reference-to-video endpoint; allowed: \(KnownEndpoints.all.joined(separator: ", "))")
            }
        }

        var imageURLs: [ImageSource] = []
        var imageNodes: [Node] = []
        if let entry = field("image_urls"), !entry.value.isNull {
            for (index, item) in listItems(entry.value, path: place("image_urls"), what: "image URLs").enumerated() {
                imageNodes.append(item)
                if let image = readImage(item, path: Self.index(place("image_urls"), index), context: &context) { imageURLs.append(image) }
            }
        }

        var elements: [ElementSpec] = []
        var elementNodes: [Node] = []
        if let entry = field("elements"), !entry.value.isNull {
            let elementsPath = place("elements")
            if case .sequence(let list) = entry.value {
                for (index, item) in list.enumerated() {
                    elementNodes.append(item)
                    if let element = readElement(item, path: Self.index(elementsPath, index), context: &context) { elements.append(element) }
                }
            } else {
                error(at: entry.value, elementsPath, "elements must be a list (each starting with '- '), not \(entry.value.kindName)")
            }
        }

        let inputs = imageNodes.count + elementNodes.count
        if inputs > SpecValidator.Options.maxInputs {
            error(at: field("elements")?.keyNode ?? field("image_urls")?.keyNode ?? node, path,
                  "\(inputs) inputs given (\(elementNodes.count) elements + \(imageNodes.count) image URLs); the model takes at most \(SpecValidator.Options.maxInputs)")
        }
        if !prompt.isEmpty {
            checkReferences(prompt: prompt, promptNode: promptNode, promptPath: place("prompt"), imageNodes: imageNodes,
                            imagesPath: place("image_urls"), elementNodes: elementNodes, elementsPath: place("elements"))
        }
        guard diagnostics.filter(\.isError).count == before else { return nil }
        return JobSpec(name: name, prompt: prompt, imageURLs: imageURLs, elements: elements, duration: duration, aspectRatio: aspect, endpoint: endpoint)
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

/// Reading values the way people write them.
enum SpecValues {
    struct Problem: Error { let message: String }

    /// `5`, `"5"`, `5s`, `5 sec`, `5 seconds`, `5.0`: whole seconds from 3 to 10.
    static func duration(_ node: Node) -> Result<Int, Problem> {
        guard let raw = node.text else {
            return .failure(Problem(message: "a duration is a number of seconds, not \(node.kindName)"))
        }
        var text = raw.lowercased().trimmingCharacters(in: .whitespaces)
        for suffix in ["seconds", "second", "secs", "sec", "s"] where text.hasSuffix(suffix) {
            text = String(text.dropLast(suffix.count)).trimmingCharacters(in: .whitespaces)
            break
        }
        let range = SpecValidator.Options.durations
        guard let value = Double(text), value.isFinite, text.allSatisfy({ $0.isNumber || $0 == "." }) else {
            return .failure(Problem(message: "'\(raw)' is not a duration; write whole seconds from \(range.lowerBound) to \(range.upperBound), e.g. 5"))
        }
        guard value == value.rounded() else {
            return .failure(Problem(message: "\(raw) is not a whole number of seconds; allowed: \(range.lowerBound) to \(range.upperBound)"))
        }
        guard value >= Double(range.lowerBound), value <= Double(range.upperBound) else {
            return .failure(Problem(message: "\(text) seconds is out of range; allowed: \(range.lowerBound) to \(range.upperBound) seconds"))
        }
        return .success(Int(value))
    }
}
