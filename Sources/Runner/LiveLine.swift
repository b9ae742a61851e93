/// The one live status line a terminal shows below the log (`run --once`'s progress). A log line written while it
/// shows would be glued to its end; so every write goes through here: clear the live line, write the log line,
/// draw the live line again below it.
public struct LiveLine: Sendable, Equatable {
    /// The line on screen now; nil when none is drawn.
    public private(set) var current: String?

    public init() {}

    static let clearToStart = "\r\u{1B}[K"

    /// The bytes that write `logText` (whole lines) without mixing it into the live line.
    public func framing(_ logText: String) -> String {
        guard let current else { return logText }
        return Self.clearToStart + logText + current
    }

    /// The bytes that replace the live line with `line`.
    public mutating func show(_ line: String) -> String {
        current = line
        return Self.clearToStart + line
    }

    /// The bytes that take the live line away; nothing when none is drawn.
    public mutating func clear() -> String {
        defer { current = nil }
        return current == nil ? "" : Self.clearToStart
    }
}
