import Foundation
import KlingCore

/// Kling O1 reference-to-video's input checks as fal answers them: a 422 `detail` array.
///
/// Written independently of the runner's spec validator on purpose: the emulator stands in for fal, so a
/// mistake shared by both would hide itself.
struct ModelInputChecker {
    /// Whether an image URL can be fetched; the emulator knows its own uploads and treats `.invalid` hosts as dead.
    var canFetch: (String) -> Bool

    static let durations = (3...10).map(String.init)
    static let aspectRatios = ["16:9", "9:16", "1:1"]
    static let maxPromptLength = 2500
    static let maxInputs = 7

    /// Every problem with `input`, in fal's format; empty when the model would accept it.
    func issues(in input: JSONValue) -> [JSONValue] {
        guard case .object(let body) = input else {
            return [issue(["body"], "Input should be a valid dictionary", "dict_type", input: input)]
        }
        var found = promptIssues(body["prompt"])
        if let duration = body["duration"], !duration.isNull, duration.stringValue.map(Self.durations.contains) != true {
            found.append(enumIssue(["body", "duration"], Self.durations, input: duration))
        }
        if let ratio = body["aspect_ratio"], !ratio.isNull, ratio.stringValue.map(Self.aspectRatios.contains) != true {
            found.append(enumIssue(["body", "aspect_ratio"], Self.aspectRatios, input: ratio))
        }
        let (imageCount, imageIssues) = listIssues(body["image_urls"], at: ["body", "image_urls"]) { url, location in
            checkURL(url, at: location)
        }
        let (elementCount, elementIssues) = listIssues(body["elements"], at: ["body", "elements"], elementIssues)
        found += imageIssues + elementIssues

        let total = elementCount + imageCount
        if total > Self.maxInputs {
            found.append(issue(["body"], "At most \(Self.maxInputs) inputs are allowed (elements + images), got \(total)", "sequence_too_long", ctx: ["max_length": .int(Int64(Self.maxInputs)), "actual_length": .int(Int64(total))]))
        }
        if case .string(let prompt)? = body["prompt"] {
            for (word, count, noun) in [("Element", elementCount, "element"), ("Image", imageCount, "image")] {
                for number in Self.references(to: word, in: prompt) where number < 1 || number > count {
                    found.append(issue(["body", "prompt"], "@\(word)\(number) refers to \(noun) \(number), but \(count) \(noun)\(count == 1 ? " was" : "s were") given", "value_error", ctx: ["reference": .string("@\(word)\(number)")]))
                }
            }
        }
        return found
    }

    /// The prompt is required, a string, not blank, and not too long.
    private func promptIssues(_ value: JSONValue?) -> [JSONValue] {
        switch value {
        case nil, .null?:
            return [issue(["body", "prompt"], "Field required", "missing")]
        case .string(let prompt)?:
            if prompt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                return [issue(["body", "prompt"], "String should have at least 1 character", "string_too_short", ctx: ["min_length": 1], input: .string(prompt))]
            } else if prompt.count > Self.maxPromptLength {
                return [issue(["body", "prompt"], "String should have at most \(Self.maxPromptLength) characters", "string_too_long", ctx: ["max_length": .int(Int64(Self.maxPromptLength))], input: .string(prompt))]
            }
            return []
        case let other?:
            return [issue(["body", "prompt"], "Input should be a valid string", "string_type", input: other)]
        }
    }

    /// An optional list field: how many items it holds, and each item's problems (or the list's own).
    private func listIssues(
        _ value: JSONValue?, at location: [JSONValue], _ check: (JSONValue, [JSONValue]) -> [JSONValue]
    ) -> (Int, [JSONValue]) {
        guard let value, !value.isNull else { return (0, []) }
        guard let list = value.arrayValue else {
            return (0, [issue(location, "Input should be a valid list", "list_type", input: value)])
        }
        var found: [JSONValue] = []
        for (index, item) in list.enumerated() {
            found += check(item, location + [.int(Int64(index))])
        }
        return (list.count, found)
    }

    /// An element needs a fetchable frontal image; its reference images, when given, must be a list of them.
    private func elementIssues(_ element: JSONValue, at location: [JSONValue]) -> [JSONValue] {
        guard case .object(let fields) = element else {
            return [issue(location, "Input should be a valid dictionary", "dict_type", input: element)]
        }
        var found: [JSONValue] = []
        if let frontal = fields["frontal_image_url"], !frontal.isNull {
            found += checkURL(frontal, at: location + ["frontal_image_url"])
        } else {
            found.append(issue(location + ["frontal_image_url"], "Field required", "missing"))
        }
        found += listIssues(fields["reference_image_urls"], at: location + ["reference_image_urls"]) { url, place in
            checkURL(url, at: place)
        }.1
        return found
    }

    /// The distinct N of every `@WordN` in the prompt, in order of first appearance.
    static func references(to word: String, in prompt: String) -> [Int] {
        var numbers: [Int] = []
        var rest = prompt[...]
        let marker = "@" + word
        while let range = rest.range(of: marker) {
            let digits = rest[range.upperBound...].prefix(while: { $0.isASCII && $0.isNumber })
            if let number = Int(digits.prefix(6)), !numbers.contains(number) { numbers.append(number) }
            rest = rest[range.upperBound...]
        }
        return numbers
    }

    private func checkURL(_ value: JSONValue, at location: [JSONValue]) -> [JSONValue] {
        guard let url = value.stringValue else {
            return [issue(location, "Input should be a valid string", "string_type", input: value)]
        }
        if canFetch(url) { return [] }
        return [issue(location, "Failed to download the file. Please check if the URL is accessible.", "file_download_error", input: value)]
    }

    private func enumIssue(_ location: [JSONValue], _ allowed: [String], input: JSONValue) -> JSONValue {
        let listed = allowed.map { "'\($0)'" }
        let text = listed.dropLast().joined(separator: ", ") + " or " + (listed.last ?? "")
        return issue(location, "Input should be \(text)", "enum", ctx: ["expected": .string(text)], input: input)
    }

    private func issue(_ location: [JSONValue], _ message: String, _ type: String, ctx: [String: JSONValue]? = nil, input: JSONValue? = nil) -> JSONValue {
        var fields: [String: JSONValue] = [
            "loc": .array(location), "msg": .string(message), "type": .string(type),
            "url": .string("https://docs.fal.ai/errors#\(type)"),
        ]
        if let ctx { fields["ctx"] = .object(ctx) }
        if let input { fields["input"] = input }
        return .object(fields)
    }
}
