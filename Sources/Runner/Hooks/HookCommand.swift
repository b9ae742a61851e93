import Foundation
import JobStore
import KlingCore
import Logging
import Synchronization

/// Which hook a completed job gets, how the store keeps it, and how its result reads in the manifest.
enum HookCommand {
    /// A stored hook: the words to run, or why there is nothing runnable (a batch naming a hook the config lacks).
    enum Stored: Equatable {
        case words([String])
        case unknown(String)
    }

    /// The hook for a job of `batch`, as the store keeps it (JSON); nil when none applies. A batch's `on_complete:`
    /// names a hook of the config (or `none`); without one, the `on_complete` setting applies.
    static func resolve(for batch: BatchRecord?, configuration: RunnerConfiguration) -> String? {
        switch batch?.onComplete {
        case "none"?:
            return nil
        case let name?:
            guard let words = configuration.hooks[name] else {
                return JSONValue.object(["unknown": .string(name)]).canonicalString()
            }
            return JSONValue.array(words.map(JSONValue.string)).canonicalString()
        case nil:
            return configuration.onComplete.map { JSONValue.array($0.map(JSONValue.string)).canonicalString() }
        }
    }

    static func decode(_ text: String?) -> Stored {
        guard let text, let value = try? JSONValue.parse(Data(text.utf8)) else { return .unknown("no hook command recorded") }
        if let words = value.arrayValue?.compactMap(\.stringValue), !words.isEmpty { return .words(words) }
        let name = value["unknown"]?.stringValue ?? "?"
        return .unknown("the batch's on_complete names the hook '\(name)', which the config file's hooks: does not define")
    }

    /// The manifest's `on_complete`: how the last run ended and what comes next.
    static func result(_ outcome: CommandRunner.Outcome, run: Int, next: HookRunOutcome, at now: Date) -> JSONValue {
        let state: String
        var retryAt: JSONValue = .null
        switch next {
        case .done: state = "done"
        case .retry(let at):
            state = "retrying"
            retryAt = .string(at.iso8601)
        case .gaveUp: state = "failed"
        }
        return [
            "state": .string(state), "runs": .int(Int64(run)), "exit_status": outcome.status.map { .int(Int64($0)) } ?? .null,
            "timed_out": .bool(outcome.timedOut), "error": outcome.startError.map(JSONValue.string) ?? .null,
            "output": .array(outcome.tail.map(JSONValue.string)), "at": .string(now.iso8601), "retry_at": retryAt,
        ]
    }

    /// Adds `on_complete` to the job's manifest (rewritten atomically); a manifest that cannot be rewritten keeps its
    /// old content, and the store still has the result.
    static func annotate(manifestAt path: String?, with result: JSONValue, logger: Logger) {
        guard let path, let data = FileManager.default.contents(atPath: path), case .object(var manifest)? = try? JSONValue.parse(data) else { return }
        manifest["on_complete"] = result
        do {
            try AtomicFile.write(JSONValue.object(manifest).prettyData(), to: path, what: "manifest")
        } catch {
            logger.warning("cannot add the on_complete result to \(path) now (\(error)); it is in the job's events")
        }
    }
}

/// Job ids whose hooks run now, shared by the loop that starts them and the tasks that end them.
final class RunningSet: Sendable {
    private let ids = Mutex<Set<Int64>>([])

    var count: Int { ids.withLock { $0.count } }
    func contains(_ id: Int64) -> Bool { ids.withLock { $0.contains(id) } }
    func insert(_ id: Int64) { _ = ids.withLock { $0.insert(id) } }
    func remove(_ id: Int64) { _ = ids.withLock { $0.remove(id) } }
}
