import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Who is working a job: the host name plus a random suffix, one per process (a daemon or a `run --once`), so that
/// an attempt says which runner sent it and two runs on one host stay apart (River's `attempted_by`).
public struct RunnerIdentity: Sendable, Hashable, CustomStringConvertible {
    /// The host the runner runs on, as `gethostname(2)` gives it.
    public let host: String
    /// `host-xxxxxx`: six hex digits of randomness, fresh for each process.
    public let id: String

    public var description: String { id }

    public init(host: String, suffix: String) {
        self.host = host
        self.id = "\(host)-\(suffix)"
    }

    /// This process's identity: made once, the first time it is asked for.
    public static let current = RunnerIdentity(host: hostName(), suffix: randomSuffix())

    /// The host's name; `localhost` when the kernel gives none (a bare container).
    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }

    /// Six lowercase hex digits from the system's random source.
    static func randomSuffix() -> String {
        let value = UInt32.random(in: 0...0xFF_FFFF)
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 6 - digits.count) + digits
    }
}
