import Foundation
import KlingCore

#if canImport(Glibc)
import Glibc
#endif

/// What only the running daemon knows (submission paused after a refused key), left in the state folder for
/// `kling-batch status`, which runs in another process.
public struct DaemonStatusFile: Sendable {
    public let path: String

    public init(stateDirectory: String) { path = stateDirectory + "/daemon-status.json" }

    func write(line: String, pausedReason: String?, now: Date = Date()) {
        let value: JSONValue = .object([
            "pid": .int(Int64(getpid())), "status": .string(line), "paused_reason": pausedReason.map(JSONValue.string) ?? .null,
            "updated_at": .string(now.iso8601),
        ])
        try? AtomicFile.write(value.prettyData(), to: path)
    }

    /// The last status the daemon wrote, when the daemon is `pid`.
    public func read(pid: Int32) -> (pausedReason: String?, line: String)? {
        guard let data = FileManager.default.contents(atPath: path), let value = try? JSONValue.parse(data),
            value["pid"] == .int(Int64(pid)), let line = value["status"]?.stringValue
        else { return nil }
        return (value["paused_reason"]?.stringValue, line)
    }
}
