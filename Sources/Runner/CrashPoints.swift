import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Test-only fault injection: `KLING_BATCH_TEST_CRASH=point:N` makes the process kill itself with SIGKILL the
/// N-th time it passes `point`, so crash tests can stop it at exact places (between fal's submit answer and
/// its commit, say) instead of hoping a timed kill lands there.
public struct CrashPoints: Sendable {
    /// The places a crash can be asked for.
    public enum Point: String, Sendable, CaseIterable {
        /// fal answered a submit; the request id is not yet committed.
        case submitAnswered = "submit-answered"
        /// The request id is committed.
        case submitCommitted = "submit-committed"
        /// The video is on disk; the manifest is not written.
        case beforeManifest = "before-manifest"
        /// A final job's manifest is written; the store has not recorded the ending yet.
        case manifestWritten = "manifest-written"
        /// A status answer arrived.
        case polled
    }

    private let target: (point: Point, count: Int)?
    private let counter = CrashCounter()

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard let text = environment["KLING_BATCH_TEST_CRASH"] else {
            target = nil
            return
        }
        let parts = text.split(separator: ":")
        if parts.count == 2, let point = Point(rawValue: String(parts[0])), let count = Int(parts[1]), count > 0 {
            target = (point, count)
        } else {
            target = nil
        }
    }

    /// Kills the process here if this is the asked-for place and time.
    public func pass(_ point: Point) {
        guard let target, target.point == point else { return }
        if counter.increment() == target.count {
            kill(getpid(), SIGKILL)
        }
    }
}

/// A thread-safe counter for `CrashPoints`.
final class CrashCounter: Sendable {
    private let value = Mutex(0)
    func increment() -> Int { value.withLock { $0 += 1; return $0 } }
}

