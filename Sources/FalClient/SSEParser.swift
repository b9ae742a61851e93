/// Server-sent events read from bytes as they arrive (the WHATWG event-stream rules): lines end in LF, CRLF or CR,
/// even when a chunk ends between CR and LF; `data:` lines of one event are joined with newlines; lines starting
/// with `:` are comments; a blank line ends an event. Small and byte-level, so a line cut between chunks, or a
/// multi-byte character cut in two, is kept until its end arrives.
public struct SSEParser: Sendable {
    /// One dispatched event.
    public struct Event: Sendable, Equatable {
        public var type: String
        public var data: String
        public var id: String?

        public init(type: String = "message", data: String, id: String? = nil) {
            self.type = type
            self.data = data
            self.id = id
        }
    }

    private var line: [UInt8] = []
    private var afterCR = false
    private var data: [String] = []
    private var type = ""
    private var id: String?
    private var sawField = false
    /// The longest line kept: a stream that never ends a line cannot grow memory without bound.
    public static let maxLine = 1 << 20

    public init() {}

    /// The events completed by `bytes`.
    public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) -> [Event] where Bytes.Element == UInt8 {
        var events: [Event] = []
        for byte in bytes {
            if afterCR {
                afterCR = false
                if byte == 0x0A { continue }
            }
            switch byte {
            case 0x0A:
                if let event = endLine() { events.append(event) }
            case 0x0D:
                afterCR = true
                if let event = endLine() { events.append(event) }
            default:
                if line.count < Self.maxLine { line.append(byte) }
            }
        }
        return events
    }

    /// Handles one complete line; returns an event when the line was blank and one was pending.
    private mutating func endLine() -> Event? {
        defer { line.removeAll(keepingCapacity: true) }
        guard !line.isEmpty else { return dispatch() }
        if line.first == UInt8(ascii: ":") { return nil }
        let text = String(decoding: line, as: UTF8.self)
        let field: Substring
        var value: Substring
        if let colon = text.firstIndex(of: ":") {
            field = text[..<colon]
            value = text[text.index(after: colon)...]
            if value.first == " " { value = value.dropFirst() }
        } else {
            field = text[...]
            value = ""
        }
        switch field {
        case "data":
            data.append(String(value))
            sawField = true
        case "event":
            type = String(value)
        case "id":
            if !value.contains("\0") { id = String(value) }
        default:
            break  // retry: and unknown fields are ignored, as the rules say
        }
        return nil
    }

    private mutating func dispatch() -> Event? {
        defer {
            data = []
            type = ""
            sawField = false
        }
        guard sawField else { return nil }
        return Event(type: type.isEmpty ? "message" : type, data: data.joined(separator: "\n"), id: id)
    }
}
