import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// ISO 8601 in UTC, written with gmtime_r: an ISO8601DateFormatter made per log line or per manifest cost 8% of the
/// runner's CPU, and one shared formatter is not safe across threads. Every timestamp kling-batch writes comes
/// from here, so the store, the manifests, the logs and the CLI agree.
extension Date {
    /// `2026-11-25T10:10:18.239Z` (UTC, milliseconds).
    public var iso8601Milliseconds: String {
        let since1970 = timeIntervalSince1970
        let seconds = since1970.rounded(.down)
        // A microsecond of slack: 1.795e9 s as a Double is only good to ~0.2 µs, so .001 s can read as 0.99999 ms.
        let millis = min(999, Int(((since1970 - seconds) * 1000 + 0.001).rounded(.down)))
        return Self.utcText(time_t(seconds), fraction: "." + Self.pad(Int32(millis), 3))
    }

    /// `2026-11-25T10:10:18Z` (UTC, whole seconds).
    public var iso8601: String {
        Self.utcText(time_t(timeIntervalSince1970.rounded(.down)), fraction: "")
    }

    /// Reads `2026-11-25T10:10:18Z`, with or without fractional seconds, or with an offset; nil otherwise.
    public init?(iso8601 text: String) {
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: text.contains("."))
        guard let date = try? style.parse(text) else { return nil }
        self = date
    }

    private static func utcText(_ seconds: time_t, fraction: String) -> String {
        var seconds = seconds
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))\(fraction)Z"
    }

    private static func pad(_ value: Int32, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}
