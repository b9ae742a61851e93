import Crypto
import Foundation
import JobStore
import KlingCore
import Yams

/// One place events are told (`notify:` in the config file): a URL that receives a POST, or a command that reads
/// the event on stdin. Its secret is never logged or shown, only its fingerprint.
public struct NotificationTarget: Sendable, Equatable {
    public enum Endpoint: Sendable, Equatable {
        case url(String)
        /// The program and its arguments (`shell: true` makes it `/bin/sh -c <text>`).
        case command([String])
    }

    /// What a URL receives: our own JSON (the README documents it), or Slack's `{"text": …}`.
    public enum Format: String, Sendable, Equatable { case json, slack }

    public var endpoint: Endpoint
    public var format: Format = .json
    /// Signs the body: `X-Kling-Batch-Signature: sha256=<hex HMAC-SHA256 of the raw body>`.
    public var secret: String?
    /// The kinds told to it; nil: every kind.
    public var events: Set<String>?
    /// How long one delivery may take before it counts as failed (and, for a command, is killed).
    public var timeout: Duration = .seconds(10)

    /// Whether it is told about `kind`.
    public func wants(_ kind: String) -> Bool { events?.contains(kind) ?? true }

    /// A stable name for its deliveries in the outbox: its URL or command hashed, so reordering the list, or
    /// changing a secret or a filter, does not tell it everything again.
    public var key: String {
        let identity = switch endpoint {
        case .url(let url): "url " + url
        case .command(let words): "command " + words.joined(separator: "\u{0}")
        }
        return String(SHA256.hash(data: Data(identity.utf8)).hexString.prefix(16))
    }

    /// How `config`, `notify test` and the log name it: the URL without its query, or the program, and the secret's
    /// fingerprint.
    public var label: String {
        var text: String
        switch endpoint {
        case .url(let url):
            text = URL(string: url).map { "\($0.scheme ?? "https")://\($0.host ?? "")\($0.port.map { ":\($0)" } ?? "")\($0.path)" } ?? "a URL"
        case .command(let words):
            text = "command " + (words.first == "/bin/sh" && words.count == 3 ? "sh -c …" : (words.first ?? ""))
        }
        if format == .slack { text += " (slack)" }
        if let secret { text += ", secret " + Self.fingerprint(secret) }
        if let events { text += ", events " + events.sorted().joined(separator: ",") }
        return text
    }

    static func fingerprint(_ secret: String) -> String {
        String(SHA256.hash(data: Data(secret.utf8)).hexString.prefix(8))
    }
}

extension NotificationTarget {
    /// The `notify:` list as JSON text, every scalar a string (types are checked when it is read).
    static func jsonText(of node: Node) -> String { json(of: node).canonicalString() }

    private static func json(of node: Node) -> JSONValue {
        switch node {
        case .scalar(let scalar): return .string(scalar.string)
        case .sequence(let items): return .array(items.map(json(of:)))
        case .mapping(let mapping): return .object(Dictionary(mapping.map { ($0.key.string ?? "", json(of: $0.value)) }) { first, _ in first })
        case .alias: return .null
        }
    }

    /// Reads the list; every mistake is an error naming `origin` and the target's position.
    public static func parseList(_ text: String, origin: String) throws -> [NotificationTarget] {
        guard let list = (try? JSONValue.parse(Data(text.utf8)))?.arrayValue else {
            throw ConfigurationError("\(origin) must be a list of targets, each with url: or command:")
        }
        return try list.enumerated().map { index, item in try parse(item, origin: "\(origin)[\(index)]") }
    }

    static func parse(_ item: JSONValue, origin: String) throws -> NotificationTarget {
        guard case .object(let fields) = item else { throw ConfigurationError("\(origin) must be a mapping with url: or command:") }
        let known = ["url", "command", "format", "secret", "events", "timeout", "shell"]
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw ConfigurationError("\(origin): unknown key '\(unknown)' (known: \(known.joined(separator: ", ")))")
        }
        let shell = try flag(fields["shell"], origin: "\(origin).shell")
        var target: NotificationTarget
        switch (fields["url"]?.stringValue, fields["command"]) {
        case (let url?, nil):
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host != nil else {
                throw ConfigurationError("\(origin).url must be an http or https URL")
            }
            target = NotificationTarget(endpoint: .url(url))
        case (nil, let command?):
            target = NotificationTarget(endpoint: .command(try words(command, shell: shell, origin: "\(origin).command")))
        default:
            throw ConfigurationError("\(origin) needs exactly one of url: or command:")
        }
        if let format = fields["format"]?.stringValue {
            guard let parsed = Format(rawValue: format) else { throw ConfigurationError("\(origin).format must be json or slack, got '\(format)'") }
            target.format = parsed
        }
        target.secret = fields["secret"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        if let events = fields["events"] {
            let names = events.arrayValue?.compactMap(\.stringValue) ?? events.stringValue.map { [$0] } ?? []
            if let unknown = names.first(where: { !OutboxEvent.kinds.contains($0) }) {
                throw ConfigurationError("\(origin).events: unknown event '\(unknown)' (known: \(OutboxEvent.kinds.joined(separator: ", ")))")
            }
            target.events = Set(names)
        }
        if let timeout = fields["timeout"]?.stringValue {
            guard let parsed = DurationText.parse(timeout), parsed > .zero, parsed <= .seconds(600) else {
                throw ConfigurationError("\(origin).timeout must be a duration from 1ms to 10m, such as 10s, got '\(timeout)'")
            }
            target.timeout = parsed
        }
        return target
    }

    private static func flag(_ value: JSONValue?, origin: String) throws -> Bool {
        guard let text = value?.stringValue else { return false }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw ConfigurationError("\(origin) must be true or false, got '\(text)'")
        }
    }

    /// A command as a program and its arguments: a list as written, or text split on blanks with '…' and "…"
    /// quoting (no shell: nothing else is special); with `shell`, the text is given to /bin/sh -c.
    static func words(_ command: JSONValue, shell: Bool, origin: String) throws -> [String] {
        if let list = command.arrayValue {
            let words = list.compactMap(\.stringValue)
            guard !words.isEmpty, words.count == list.count else { throw ConfigurationError("\(origin) must be text or a list of words") }
            return shell ? ["/bin/sh", "-c", words.joined(separator: " ")] : words
        }
        guard let text = command.stringValue, !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ConfigurationError("\(origin) must be text or a list of words")
        }
        if shell { return ["/bin/sh", "-c", text] }
        var words: [String] = []
        var current = ""
        var quote: Character?
        var started = false
        for character in text {
            if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
            } else if character == "'" || character == "\"" {
                quote = character
                started = true
            } else if character.isWhitespace {
                if started || !current.isEmpty { words.append(current) }
                current = ""
                started = false
            } else {
                current.append(character)
            }
        }
        guard quote == nil else { throw ConfigurationError("\(origin): a quote is not closed") }
        if started || !current.isEmpty { words.append(current) }
        return words
    }
}
