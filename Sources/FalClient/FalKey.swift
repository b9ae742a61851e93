import Foundation

/// The fal API key. It prints as a redaction, never as itself, so it cannot leak through logs or errors.
public struct FalKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private let secret: String
    /// Where the key came from, for `kling-batch config` and error messages (never the key).
    public let source: String

    /// A key from text as a person or file gives it: surrounding whitespace and newlines are removed.
    public init?(_ raw: String, source: String) {
        let trimmed = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, !trimmed.contains(where: { $0.isNewline }) else { return nil }
        self.secret = trimmed
        self.source = source
    }

    /// `FAL_KEY`, or `FAL_KEY_ID` and `FAL_KEY_SECRET` joined as `id:secret`, the official client's rule.
    public static func fromEnvironment(_ environment: [String: String]) -> FalKey? {
        if let key = environment["FAL_KEY"].flatMap({ FalKey($0, source: "FAL_KEY") }) {
            return key
        }
        if let id = environment["FAL_KEY_ID"], let secret = environment["FAL_KEY_SECRET"],
            !id.isEmpty, !secret.isEmpty
        {
            return FalKey("\(id):\(secret)", source: "FAL_KEY_ID and FAL_KEY_SECRET")
        }
        return nil
    }

    /// Reads a key file (`--key-file`, or systemd's `$CREDENTIALS_DIRECTORY/fal-key`).
    public static func read(file path: String) throws -> FalKey {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw FalKeyError(message: "cannot read the fal key file \(path): \((error as NSError).localizedDescription)")
        }
        guard data.count < 4096, let text = String(data: data, encoding: .utf8), let key = FalKey(text, source: path)
        else {
            throw FalKeyError(message: "the fal key file \(path) does not hold a key (one line of text expected)")
        }
        return key
    }

    /// The `Authorization` header value fal expects.
    var authorizationHeader: String { "Key \(secret)" }

    /// Replaces any occurrence of the key in `text`: a last line of defence for text that came from elsewhere.
    public func redact(_ text: String) -> String {
        guard text.contains(secret) else { return text }
        return text.replacingOccurrences(of: secret, with: "<redacted>")
    }

    /// A stable, non-reversible fingerprint so operators can tell keys apart without seeing them.
    public var fingerprint: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in secret.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0100_0000_01b3
        }
        return String(hash & 0xFFFF_FFFF, radix: 16)
    }

    public var description: String { "<fal key from \(source), redacted>" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["source": source]) }
}

/// A key that could not be found or read; says where it looked, never what it read.
public struct FalKeyError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
