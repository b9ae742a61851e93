/// A spec string with `{name}` placeholders, parsed once so that ten thousand expanded jobs only concatenate.
///
/// `{name}` (a letter or `_`, then letters, digits or `_`) is a placeholder; `{{` and `}}` are literal braces; any
/// other brace is itself, so a prompt that happens to hold `{ }` or JSON keeps its meaning.
struct TemplateText: Equatable {
    enum Part: Equatable {
        case literal(String)
        case variable(String)
    }

    let parts: [Part]
    /// True when rendering gives the text back unchanged: no placeholder and no doubled brace.
    let isPlain: Bool

    init(_ text: String) {
        // A byte scan: Foundation's `contains` on a String showed in ingest profiles, and most text has no brace.
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "{") || $0 == UInt8(ascii: "}") }) else {
            parts = [.literal(text)]
            isPlain = true
            return
        }
        var isPlain = true
        var parts: [Part] = []
        var literal = ""
        let characters = Array(text)
        var index = 0
        while index < characters.count {
            let character = characters[index]
            let next = index + 1 < characters.count ? characters[index + 1] : nil
            if (character == "{" || character == "}") && next == character {
                isPlain = false
                literal.append(character)
                index += 2
                continue
            }
            if character == "{", let end = Self.placeholderEnd(characters, from: index + 1) {
                if !literal.isEmpty { parts.append(.literal(literal)) }
                literal = ""
                isPlain = false
                parts.append(.variable(String(characters[(index + 1)..<end])))
                index = end + 1
                continue
            }
            literal.append(character)
            index += 1
        }
        if !literal.isEmpty || parts.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
        self.isPlain = isPlain
    }

    /// The index of the `}` closing a placeholder whose name starts at `start`; nil when it is not one.
    private static func placeholderEnd(_ characters: [Character], from start: Int) -> Int? {
        var index = start
        while index < characters.count, index - start <= 64, isNameCharacter(characters[index], first: index == start) { index += 1 }
        guard index > start, index - start <= 64, index < characters.count, characters[index] == "}" else { return nil }
        return index
    }

    /// Whether `character` may be part of a variable's name (`first`: its first character).
    static func isNameCharacter(_ character: Character, first: Bool) -> Bool {
        guard character.isASCII else { return false }
        return character.isLetter || character == "_" || (!first && character.isNumber)
    }

    /// Whether `name` can be written as a placeholder (at most 64 characters: names are for people to read).
    static func isName(_ name: String) -> Bool {
        guard name.count <= 64, let first = name.first, isNameCharacter(first, first: true) else { return false }
        return name.dropFirst().allSatisfy { isNameCharacter($0, first: false) }
    }

    /// The placeholders' names, in order of appearance.
    var names: [String] {
        parts.compactMap { part in
            if case .variable(let name) = part { return name }
            return nil
        }
    }


    /// The most one rendered string may hold: every field's own limit is far smaller (a prompt 2,500 characters, a
    /// name 100, meta 4 KB), so a longer one is cut here and refused by its field, never built to gigabytes.
    static let maxRendered = 1 << 20

    /// The text with each placeholder replaced by `values[name]` (passed through `escape`, as a job name needs);
    /// an unknown name is left as written (`expand` reports those before rendering). Cut at `maxRendered`.
    func render(_ values: [String: String], escape: ((String) -> String)? = nil) -> String {
        var result = ""
        for part in parts where result.utf8.count <= Self.maxRendered {
            switch part {
            case .literal(let text): result += text
            case .variable(let name):
                guard let value = values[name] else {
                    result += "{\(name)}"
                    continue
                }
                result += escape.map { $0(value) } ?? value
            }
        }
        return result
    }
}
