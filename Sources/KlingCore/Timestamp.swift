import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension Date {
    /// `2026-11-25T10:10:18.239Z` (UTC, milliseconds), from gmtime_r: an ISO8601DateFormatter made per log line or
    /// per manifest cost 8% of the runner's CPU, and one shared formatter is not safe across threads.
    public var iso8601Milliseconds: String {
        let since1970 = timeIntervalSince1970
        var seconds = time_t(since1970.rounded(.down))
        // A microsecond of slack: 1.795e9 s as a Double is only good to ~0.2 µs, so .001 s can read as 0.99999 ms.
        let millis = min(999, Int(((since1970 - Double(seconds)) * 1000 + 0.001).rounded(.down)))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(millis), 3))Z"
    }
}
