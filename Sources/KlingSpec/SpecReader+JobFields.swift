import Foundation
import Yams

/// A job's own fields over its batch's defaults, so each field reader asks one place and reports the right path.
struct JobFields {
    let own: [MappingEntry]
    let defaults: [MappingEntry]
    let path: String
    let node: Node
    /// Fields a matrix key or a CSV column set for this expanded job (never also written in the job itself).
    var overrides: [MappingEntry] = []
    /// Where each override came from: `matrix.duration[1]`, or `prompts.csv:12:3 (column prompt)`.
    var overridePlaces: [String: String] = [:]

    /// The matrix's or CSV row's entry for `key`, else the job's own, else the default's.
    func entry(_ key: String) -> MappingEntry? {
        overrides.first { $0.key == key } ?? own.first { $0.key == key } ?? defaults.first { $0.key == key }
    }

    /// Where an error about `key` points: the matrix or CSV value, the job's own field, or the default it inherited.
    func place(_ key: String) -> String {
        if let place = overridePlaces[key] { return place }
        return own.contains { $0.key == key } ? SpecReader.join(path, key) : "defaults.\(key)"
    }

    /// The entry for `key` when it is given and not null.
    func given(_ key: String) -> MappingEntry? {
        guard let entry = entry(key), !entry.value.isNull else { return nil }
        return entry
    }
}

extension SpecReader {
    /// The job's name when it is given and valid; nil keeps the file's default name (errors are reported).
    mutating func readName(_ fields: JobFields) -> String? {
        guard let entry = fields.given("name") else { return nil }
        guard let text = entry.value.text else {
            error(at: entry.value, fields.place("name"), "a name is a single word, not \(entry.value.kindName)")
            return nil
        }
        if let problem = JobNameRule.problem(with: text) {
            error(at: entry.value, fields.place("name"), problem)
            return nil
        }
        return text
    }

    /// The trimmed prompt and the node errors about it point at; empty when missing or wrong (errors are reported).
    mutating func readPrompt(_ fields: JobFields) -> (String, Node) {
        guard let entry = fields.given("prompt") else {
            error(at: fields.entry("prompt")?.keyNode ?? fields.node, SpecReader.join(fields.path, "prompt"),
                  "a prompt is required: the text that describes the video")
            return ("", fields.node)
        }
        guard let text = entry.value.text else {
            error(at: entry.value, fields.place("prompt"),
                  "the prompt must be text, not \(entry.value.kindName); use a block (prompt: >) for long text")
            return ("", entry.value)
        }
        let prompt = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let length = prompt.unicodeScalars.count
        let limit = SpecValidator.Options.maxPromptLength
        if prompt.isEmpty {
            error(at: entry.value, fields.place("prompt"), "the prompt is empty; describe the video to make")
        } else if length > limit {
            error(at: entry.value, fields.place("prompt"), "the prompt has \(length) characters; at most \(limit) are allowed")
        }
        return (prompt, entry.value)
    }

    /// Seconds of video; 5 when not given.
    mutating func readDuration(_ fields: JobFields) -> Int {
        guard let entry = fields.given("duration") else { return 5 }
        switch SpecValues.duration(entry.value) {
        case .success(let seconds): return seconds
        case .failure(let problem):
            error(at: entry.value, fields.place("duration"), problem.message)
            return 5
        }
    }

    /// The frame shape; landscape when not given.
    mutating func readAspectRatio(_ fields: JobFields) -> AspectRatio {
        guard let entry = fields.given("aspect_ratio") else { return .landscape }
        if let text = entry.value.text, let ratio = AspectRatio(lenient: text) { return ratio }
        let shown = entry.value.text.map { "'\($0)'" } ?? entry.value.kindName
        error(at: entry.value, fields.place("aspect_ratio"), "\(shown) is not an aspect ratio the model makes; allowed: 16:9, 9:16, 1:1")
        return .landscape
    }

    /// The fal endpoint; the standard one when not given. Only Kling O1 reference-to-video endpoints are accepted.
    mutating func readEndpoint(_ fields: JobFields) -> String {
        guard let entry = fields.given("endpoint") else { return KnownEndpoints.default }
        if let text = entry.value.text, KnownEndpoints.all.contains(text) { return text }
        let shown = entry.value.text.map { "'\($0)'" } ?? entry.value.kindName
        error(at: entry.value, fields.place("endpoint"),
              "\(shown) is not a Kling O1 reference-to-video endpoint; allowed: \(KnownEndpoints.all.joined(separator: ", "))")
        return KnownEndpoints.default
    }

    /// fal's queue priority for the job (`normal` or `low`); nil when not given, so the setting applies.
    mutating func readQueuePriority(_ fields: JobFields) -> String? {
        guard let entry = fields.given("queue_priority") else { return nil }
        if let text = entry.value.text?.lowercased(), ["normal", "low"].contains(text) { return text }
        let shown = entry.value.text.map { "'\($0)'" } ?? entry.value.kindName
        error(at: entry.value, fields.place("queue_priority"), "\(shown) is not a queue priority fal knows; allowed: normal, low")
        return nil
    }

    /// How soon the job is claimed (`high`, `normal`, `low`); nil when not given (normal).
    mutating func readPriority(_ fields: JobFields) -> String? {
        guard let entry = fields.given("priority") else { return nil }
        if let text = entry.value.text?.lowercased(), ["high", "normal", "low"].contains(text) { return text == "normal" ? nil : text }
        let shown = entry.value.text.map { "'\($0)'" } ?? entry.value.kindName
        error(at: entry.value, fields.place("priority"), "\(shown) is not a priority; allowed: high, normal, low")
        return nil
    }

    /// The image URLs read, and every node given (the prompt's @ImageN count them, readable or not).
    mutating func readImageURLs(_ fields: JobFields, context: inout JobContext) -> ([ImageSource], [Node]) {
        guard let entry = fields.given("image_urls") else { return ([], []) }
        let path = fields.place("image_urls")
        var images: [ImageSource] = []
        let nodes = listItems(entry.value, path: path, what: "image URLs")
        for (index, item) in nodes.enumerated() {
            if let image = readImage(item, path: Self.index(path, index), context: &context) { images.append(image) }
        }
        return (images, nodes)
    }

    /// The elements read, and every node given (the prompt's @ElementN count them, readable or not).
    mutating func readElements(_ fields: JobFields, context: inout JobContext) -> ([ElementSpec], [Node]) {
        guard let entry = fields.given("elements") else { return ([], []) }
        let path = fields.place("elements")
        guard case .sequence(let list) = entry.value else {
            error(at: entry.value, path, "elements must be a list (each starting with '- '), not \(entry.value.kindName)")
            return ([], [])
        }
        var elements: [ElementSpec] = []
        for (index, item) in list.enumerated() {
            if let element = readElement(item, path: Self.index(path, index), context: &context) { elements.append(element) }
        }
        return (elements, Array(list))
    }
}
