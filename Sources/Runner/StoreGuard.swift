import Foundation
import JobStore
import Logging
import ServiceLifecycle
import Synchronization

/// Notices the database file deleted, replaced or emptied under a running runner, and stops it.
///
/// SQLite keeps writing to an unlinked file without a word, so a store deleted under a running daemon would take
/// every job, and every request already paid for, with it at exit. Every `interval` this compares what is at the
/// store's path with the file the store opened; on a difference it pauses submission and throws `StoreLost`,
/// which stops the whole service group. The runner then saves what its open connection can still read (see
/// `StoreLost.rescue`) and exits non-zero.
public struct StoreGuard: Service {
    /// The SQLite store itself: its files are what is watched.
    let store: JobStore
    let environment: RunnerEnvironment

    public init(store: JobStore, environment: RunnerEnvironment) {
        self.store = store
        self.environment = environment
    }

    public func run() async throws {
        let interval = environment.configuration.storeCheckInterval
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let check = store.checkFile()
            if check != .intact {
                await environment.gate.pause(.store, "the job store \(store.path) vanished")
                if case .sidecarLost = check {
                    // The database file is still there: put the commits only our open WAL holds into it now.
                    do {
                        try store.checkpoint()
                        environment.logger.notice("the commits of the lost write-ahead log are saved in \(store.path)")
                    } catch {
                        environment.logger.error("could not save the lost write-ahead log into \(store.path): \(error)")
                    }
                }
                throw StoreLost(path: store.path, check: check, identity: store.identity)
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}

/// The store's file is not the one the runner opened any more.
public struct StoreLost: Error, CustomStringConvertible {
    public let path: String
    public let check: StoreFileCheck
    public let identity: StoreIdentity

    public var description: String {
        let what: String
        switch check {
        case .intact: what = "is intact"
        case .deleted: what = "was deleted or moved away"
        case .replaced(let other): what = "was replaced by another file (\(other))"
        case .emptied: what = "was emptied (cut to 0 bytes)"
        case .sidecarLost(let name): what = "lost its \(name) file (deleted or replaced)"
        }
        return "the job store \(path) (\(identity)) \(what) while running"
    }

    /// Saves what the runner's open connection can still read beside the lost file, once every part of the runner
    /// has stopped writing, checks the copy, and says how to put it back. Returns the copy's path, or nil when none
    /// could be made.
    ///
    /// The store is then kept open until the process exits: closing it would checkpoint its WAL into whatever file
    /// now has its inode (an emptied one would come back as a damaged store that looks whole).
    @discardableResult
    public func rescue(_ store: JobStore, logger: Logger) -> String? {
        Self.keptOpen.withLock { $0.append(store) }
        if case .sidecarLost = check {
            logger.critical("\(self); stopped. The database file itself was kept, and the log's commits were written into it: start again (nothing to restore).")
            return nil
        }
        let directory = (path as NSString).deletingLastPathComponent
        let copy = JobStore.rescuePath(in: directory)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try store.rescue(to: copy)
            // The whole folder may have gone: the marker says a store lived here, so no start makes a new one.
            try? JobStore.writeMarker(identity, in: directory)
        } catch {
            logger.critical("\(self); stopped. Saving a copy failed (\(error)); restore the store from a backup before starting again.")
            return nil
        }
        let verdict = JobStore.describeCopy(at: copy)
        logger.critical(
            "\(self); stopped. What this process could still read (jobs, and requests at fal) is saved in \(copy): \(verdict). To go on: make sure no kling-batch is running, put it back with `mv \(copy) \(path)`, and start again.")
        return copy
    }

    /// Stores whose file was lost: never closed, see `rescue`.
    private static let keptOpen = Mutex<[JobStore]>([])
}
