import Foundation
import KlingCore
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Log lines to stderr: one line per event with the job and request id, as plain text, JSON for log shippers,
/// or with the `<N>` priority prefixes journald reads when `$JOURNAL_STREAM` says stderr is the journal.
public struct KlingLogHandler: LogHandler {
    public enum Format: String, Sendable, CaseIterable {
        case text, json, journal
    }

    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    let label: String
    let format: Format

    public init(label: String, level: Logger.Level, format: Format) {
        self.label = label
        self.logLevel = level
        self.format = format
    }

    /// journald when `$JOURNAL_STREAM` names stderr's device and inode, text otherwise.
    public static func defaultFormat(environment: [String: String] = ProcessInfo.processInfo.environment) -> Format {
        guard let stream = environment["JOURNAL_STREAM"] else { return .text }
        var info = stat()
        guard fstat(STDERR_FILENO, &info) == 0 else { return .text }
        return stream == "\(info.st_dev):\(info.st_ino)" ? .journal : .text
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        let line: String
        switch format {
        case .text:
            line = "\(Date().iso8601Milliseconds) \(event.level.rawValue)\(Self.context(all)) \(LogSafe.escape("\(event.message)"))"
        case .journal:
            line = "<\(Self.priority(event.level))>\(Self.context(all).dropFirst())\(all.isEmpty ? "" : " ")\(LogSafe.escape("\(event.message)"))"
        case .json:
            var object: [String: String] = ["time": Date().iso8601Milliseconds, "level": event.level.rawValue, "message": "\(event.message)", "logger": label]
            for (key, value) in all { object[key] = "\(value)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            line = String(decoding: data, as: UTF8.self)
        }
        Self.emit(line + "\n")
    }

    /// ` [job=… request=…]`, every value escaped: a file name or fal's text with a newline must not start a
    /// forged line of its own (JSON lines are escaped by the encoder instead).
    static func context(_ metadata: Logger.Metadata) -> String {
        guard !metadata.isEmpty else { return "" }
        return " [" + ordered(metadata).map { "\($0.key)=\(LogSafe.escape("\($0.value)"))" }.joined(separator: " ") + "]"
    }

    /// syslog priorities, as journald reads them from `<N>` prefixes.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    /// `job` first, then `request`, then the rest by name.
    static func ordered(_ metadata: Logger.Metadata) -> [(key: String, value: Logger.Metadata.Value)] {
        let order = ["job": 0, "request": 1]
        return metadata.sorted { (order[$0.key] ?? 2, $0.key) < (order[$1.key] ?? 2, $1.key) }
    }

    /// The terminal's live line, under the lock every stderr write takes.
    private static let terminal = Mutex(LiveLine())

    /// One write(2) per line so lines from concurrent tasks never interleave; a live line is moved below it.
    static func emit(_ text: String) {
        terminal.withLock { writeAll($0.framing(text)) }
    }

    /// Draws (or redraws) the live line under the log.
    public static func showLiveLine(_ line: String) {
        terminal.withLock { writeAll($0.show(line)) }
    }

    /// Takes the live line away, leaving the terminal as the log left it.
    public static func clearLiveLine() {
        terminal.withLock { writeAll($0.clear()) }
    }

    private static func writeAll(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { Glibc.write(STDERR_FILENO, $0.baseAddress! + offset, $0.count - offset) }
            if written <= 0 { break }
            offset += written
        }
    }
}
