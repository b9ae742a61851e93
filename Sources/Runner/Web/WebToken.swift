import Foundation
import KlingCore

/// The per-install token that lets a browser act (cancel, retry, rerun): 32 random bytes as hex in
/// `<state>/web-token`, mode 0600, made on first use. Whoever can read the state folder can act anyway (with the
/// CLI); the token only keeps other local users and other sites' pages from doing it through the browser.
public struct WebToken: Sendable, Equatable {
    public let value: String

    /// The token of the state folder, made (0600, written atomically) when there is none.
    public static func load(stateDirectory: String) throws -> WebToken {
        let path = stateDirectory + "/web-token"
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if value.count == 64, value.allSatisfy(\.isHexDigit) { return WebToken(value: value) }
        }
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in bytes.indices { bytes[index] = UInt8.random(in: .min ... .max, using: &generator) }
        let value = bytes.hexString
        let temporary = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: Data((value + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: temporary])
        }
        chmod(temporary, 0o600)
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        return WebToken(value: value)
    }

    /// Whether `candidate` is the token, compared in constant time.
    public func matches(_ candidate: String?) -> Bool {
        guard let candidate else { return false }
        let left = Array(value.utf8), right = Array(candidate.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}
