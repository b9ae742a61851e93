import Foundation
import Yams

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
