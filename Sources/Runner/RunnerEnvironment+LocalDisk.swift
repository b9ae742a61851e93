import Foundation
import KlingCore
import Logging

/// Our own disk and store: pausing submission when they refuse writes, waiting for them, and holding room for
/// downloads.
extension RunnerEnvironment {
    /// Pauses submission for a fault of our own machine and says so once; the runner resumes by itself.
    func pauseLocal(_ cause: SubmissionGate.PauseCause, _ reason: String, metadata: Logger.Metadata? = nil) async {
        if await gate.pause(cause, reason) {
            logger.critical("submission paused: \(reason); resuming by itself once it is fixed (checked every \(configuration.localRecheck.formattedSeconds))",
                            metadata: metadata)
            doorbell.ring()
        }
    }

    /// Lifts a local pause after a write worked, and says so once.
    func clearLocal(_ cause: SubmissionGate.PauseCause) async {
        if await gate.clear(cause) { logger.notice("\(Self.recovered(cause)); submission resumes") }
    }

    static func recovered(_ cause: SubmissionGate.PauseCause) -> String {
        switch cause {
        case .key: "the key was reloaded"
        case .store: "the job store can be written again"
        case .stateSpace: "the state folder has room again"
        case .output: "the output folder can be written again"
        }
    }

    /// Waits until `cause` clears or the recheck interval passes; false when the runner is stopping.
    func waitForLocal(_ cause: SubmissionGate.PauseCause) async -> Bool {
        await gate.waitUntilClear(cause, atMost: configuration.localRecheck)
        return !Task.isCancelled
    }

    /// Pauses submission because the output tree refused a write, remembering where to probe and, when it was a
    /// lack of room, how much room the write needs.
    func pauseOutput(_ error: LocalWriteError, _ reason: String, needs bytes: Int64 = 0, metadata: Logger.Metadata? = nil) async {
        failedOutput.withLock { $0 = (error.folder, bytes) }
        await pauseLocal(.output, reason, metadata: metadata)
    }

    /// Whether the write that failed would work now: the folder takes a probe file and has the room it needed.
    func outputWritableAgain() -> Bool {
        let (folder, bytes) = failedOutput.withLock { $0 } ?? (configuration.outputDirectory, 0)
        if bytes > 0 {
            let reserved = outputReserved.withLock { $0 }
            guard let free = DiskSpace.available(at: folder), free - reserved >= bytes + Self.outputMargin else { return false }
        }
        return (try? DiskSpace.probeWrite(in: folder)) != nil
    }

    /// Room kept free beside the videos, for their manifests and the probe itself.
    static let outputMargin: Int64 = 1_000_000

    /// Reserves room for `bytes` more of video beside `videoPath`, or throws `OutputFull` (the ENOSPC writing them
    /// would meet) without writing anything: a full disk then holds only the downloads that can finish, instead of
    /// partial files of every one of them that none can complete.
    func reserveOutput(_ bytes: Int64, for videoPath: String) throws -> OutputReservation {
        let folder = (videoPath as NSString).deletingLastPathComponent
        let granted = outputReserved.withLock { reserved -> Bool in
            guard let free = DiskSpace.available(at: folder), free - reserved >= bytes + Self.outputMargin else { return false }
            reserved += bytes
            return true
        }
        guard granted else { throw OutputFull(error: LocalWriteError(what: "video", path: videoPath, code: ENOSPC), bytes: bytes) }
        return OutputReservation(bytes: bytes, release: { [self] in outputReserved.withLock { $0 -= bytes } })
    }
}

/// Room held for one download until it has landed (or failed): released when the last reference goes.
final class OutputReservation: Sendable {
    let bytes: Int64
    private let release: @Sendable () -> Void

    init(bytes: Int64, release: @escaping @Sendable () -> Void) {
        self.bytes = bytes
        self.release = release
    }

    deinit { release() }
}

/// A download that would not fit: the disk error it would meet, and the room it needs.
struct OutputFull: Error {
    let error: LocalWriteError
    let bytes: Int64
}
