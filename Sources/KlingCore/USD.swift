import Foundation

/// An amount of US dollars in millionths, so that prices like $0.112 per second add up exactly.
public struct USD: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// Millionths of a dollar.
    public var micros: Int64

    public init(micros: Int64) { self.micros = micros }

    public static let zero = USD(micros: 0)

    /// Parses a user-written amount such as `2`, `2.5`, `$0.56` or `0.112`; nil if it is not one.
    public init?(parsing text: String) {
        var text = text.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("$") { text.removeFirst() }
        guard text.contains(where: { $0.isNumber }) else { return nil }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let whole = Int64(parts[0].isEmpty ? "0" : parts[0]), whole >= 0
        else { return nil }
        var fraction: Int64 = 0
        if parts.count == 2 {
            let digits = parts[1]
            guard digits.count <= 6, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
            let padded = digits + String(repeating: "0", count: 6 - digits.count)
            guard let value = Int64(padded) else { return nil }
            fraction = value
        }
        guard parts[0].allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        let (product, overflow) = whole.multipliedReportingOverflow(by: 1_000_000)
        guard !overflow else { return nil }
        self.micros = product + fraction
    }

    /// Whole dollars and cents, rounded half up: `$0.56`, `$1120.00` (no thousands separators).
    public var description: String {
        let cents = (micros + 5_000) / 10_000
        let sign = micros < 0 ? "-" : ""
        let absolute = abs(cents)
        let fraction = absolute % 100
        return "\(sign)$\(absolute / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    /// Every digit that is there, at least cents: `$0.336`, `$0.56`, `$1.12`. Lists whose amounts must add up to
    /// their total (`plan`'s cost column) show these: rounding each row to cents would not add up.
    public var exactDescription: String {
        let sign = micros < 0 ? "-" : ""
        let absolute = micros.magnitude
        var fraction = String(absolute % 1_000_000)
        fraction = String(repeating: "0", count: 6 - fraction.count) + fraction
        while fraction.count > 2 && fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(sign)$\(absolute / 1_000_000).\(fraction)"
    }

    /// Dollars as a decimal string with every digit (`0.336`), for JSON and CSV that spreadsheets sum exactly.
    public var decimalText: String { String(exactDescription.replacingOccurrences(of: "$", with: "")) }

    /// Dollars as a floating point number, for JSON output and metrics only.
    public var dollars: Double { Double(micros) / 1_000_000 }

    public static func < (lhs: USD, rhs: USD) -> Bool { lhs.micros < rhs.micros }
    public static func + (lhs: USD, rhs: USD) -> USD { USD(micros: lhs.micros + rhs.micros) }
    public static func - (lhs: USD, rhs: USD) -> USD { USD(micros: lhs.micros - rhs.micros) }
    public static func * (lhs: USD, rhs: Int) -> USD { USD(micros: lhs.micros * Int64(rhs)) }
    public static func += (lhs: inout USD, rhs: USD) { lhs.micros += rhs.micros }
}

extension USD {
    /// fal's published price for Kling O1 reference-to-video: $0.112 per second of video.
    public static let klingO1PerSecond = USD(micros: 112_000)
}
