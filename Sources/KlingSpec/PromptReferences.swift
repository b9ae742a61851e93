/// The `@ElementN` and `@ImageN` mentions in a prompt, which must point at inputs that exist.
public struct PromptReferences: Sendable, Equatable {
    /// The N of every `@ElementN`, each once, in order of first mention.
    public var elements: [Int]
    /// The N of every `@ImageN`, each once, in order of first mention.
    public var images: [Int]

    public init(prompt: String) {
        elements = Self.numbers(after: "@Element", in: prompt)
        images = Self.numbers(after: "@Image", in: prompt)
    }

    private static func numbers(after marker: String, in prompt: String) -> [Int] {
        var found: [Int] = []
        var rest = prompt[...]
        while let range = rest.range(of: marker) {
            let digits = rest[range.upperBound...].prefix(while: { $0.isASCII && $0.isNumber })
            if !digits.isEmpty, let number = Int(digits.prefix(9)), !found.contains(number) { found.append(number) }
            rest = rest[range.upperBound...]
        }
        return found
    }
}
