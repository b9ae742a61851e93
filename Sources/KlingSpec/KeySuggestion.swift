/// "Did you mean …?" for misspelt keys, in spec files and in the config file.
public enum KeySuggestion {
    /// Words people use for a field under another name.
    static let synonyms: [String: String] = [
        "images": "image_urls", "image": "image_urls", "imageurls": "image_urls", "styles": "image_urls",
        "references": "reference_image_urls", "refs": "reference_image_urls", "reference_images": "reference_image_urls",
        "frontal": "frontal_image_url", "front": "frontal_image_url", "frontal_image": "frontal_image_url",
        "seconds": "duration", "length": "duration", "secs": "duration",
        "ratio": "aspect_ratio", "aspect": "aspect_ratio", "format": "aspect_ratio",
        "model": "endpoint", "endpoint_id": "endpoint",
        "text": "prompt", "description": "prompt",
        "title": "name", "id": "name",
        "job": "jobs", "default": "defaults",
    ]

    /// The allowed key `key` was most likely meant to be, if any is close enough.
    public static func suggest(_ key: String, among allowed: [String]) -> String? {
        let normalized = normalize(key)
        if let exact = allowed.first(where: { normalize($0) == normalized }) { return exact }
        if let synonym = synonyms[normalized], allowed.contains(synonym) { return synonym }
        let scored = allowed.map { ($0, distance(normalized, normalize($0))) }.min { $0.1 < $1.1 }
        guard let (best, score) = scored else { return nil }
        let tolerance = max(1, min(3, best.count / 4))
        return score <= tolerance ? best : nil
    }

    /// Lower-case, `camelCase` and `kebab-case` folded to `snake_case`.
    static func normalize(_ key: String) -> String {
        var result = ""
        for character in key {
            if character.isUppercase, let last = result.last, last != "_" { result.append("_") }
            result.append(character == "-" || character == " " ? "_" : Character(character.lowercased()))
        }
        return result
    }

    /// Levenshtein distance, enough for short keys.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, y) in b.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
