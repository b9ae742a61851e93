import Foundation
import JobStore
import KlingCore
import KlingSpec
import Logging
import ServiceLifecycle
import Synchronization

/// Picks up every spec file dropped into the jobs folder, and none half-written.
///
/// inotify reports files closed after writing (read once they have kept their size and mtime for the settle
/// time, since scp and editors close and write again) and files moved in (read at once: a rename is complete).
/// A periodic full rescan, and one at once after an inotify overflow, catches anything the kernel dropped.
public final class SpecWatcher: Service, Sendable {
    /// What the watcher is waiting on for one file.
    struct Observation: Equatable {
        var size: Int64
        var modified: Date
        var stableSince: ContinuousClock.Instant
    }

    private struct Inbox {
        var events: [Inotify.Event] = []
        var rescan = true
        var stopping = false
    }

    /// The jobs folder.
    public let root: String
    private let ingestor: BatchIngestor
    private let environment: RunnerEnvironment
    private let onReady: @Sendable () -> Void
    private let inbox = Mutex(Inbox())
    private let bell = Doorbell()

    public init(folder: String, ingestor: BatchIngestor, environment: RunnerEnvironment, onReady: @escaping @Sendable () -> Void = {}) {
        self.root = folder
        self.ingestor = ingestor
        self.environment = environment
        self.onReady = onReady
    }

    /// Rescans the folder now (SIGUSR1, or a CLI command that dropped work).
    public func rescan() {
        inbox.withLock { $0.rescan = true }
        bell.ring()
    }

    /// Runs until shutdown; throws `DropFolderError` at once when the folder cannot be used safely (a symlink
    /// as `accepted/`, say), which stops the daemon.
    public func run() async throws {
        let folder = try DropFolder(root: root)
        let logger = environment.logger
        let inotify: Inotify?
        do {
            inotify = try Inotify(folder: folder.root)
        } catch {
            inotify = nil
            logger.warning("cannot watch \(folder.root) with inotify (\(error)); relying on rescans every \(environment.configuration.rescanInterval.formattedSeconds)")
        }
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                if let inotify {
                    group.addTask { [self] in
                        for await event in inotify.events() {
                            inbox.withLock { $0.events.append(event) }
                            bell.ring()
                        }
                    }
                }
                await watch(folder, announceReady: true)
                inotify?.stop()
                group.cancelAll()
            }
        } onGracefulShutdown: { [self] in
            inbox.withLock { $0.stopping = true }
            bell.ring()
        }
        logger.info("stopped watching \(folder.root)")
    }

    /// The loop: take what the kernel said, rescan when due, read files that have settled, sleep until the next of those.
    private func watch(_ folder: DropFolder, announceReady: Bool) async {
        var pending: [String: Observation] = [:]
        var nextRescan = ContinuousClock.now
        var ready = !announceReady
        while !Task.isCancelled {
            var due: [String] = []
            let (events, rescanAsked, stopping) = inbox.withLock { inbox -> ([Inotify.Event], Bool, Bool) in
                defer { inbox.events = []; inbox.rescan = false }
                return (inbox.events, inbox.rescan, inbox.stopping)
            }
            if stopping { return }
            let settings = environment.configuration
            let now = ContinuousClock.now
            var rescanNow = rescanAsked || now >= nextRescan
            for event in events {
                switch event {
                case .movedIn(let name):
                    pending[name] = nil
                    if SpecFiles.isSpecFile(name) { due.append(name) }
                case .closedAfterWrite(let name):
                    if SpecFiles.isSpecFile(name), let seen = observe(name, at: now) { pending[name] = seen }
                case .overflow:
                    environment.logger.notice("inotify queue overflowed; rescanning \(folder.root)")
                    rescanNow = true
                }
            }
            if rescanNow {
                for name in DropFolderIntake.names(in: folder) where pending[name] == nil {
                    guard let seen = observe(name, at: now) else { continue }
                    // A file untouched for the settle time already (there at startup, or missed by inotify) is read now.
                    if Date().timeIntervalSince(seen.modified) >= settings.settle.seconds { due.append(name) } else { pending[name] = seen }
                }
                nextRescan = now + settings.rescanInterval
            }
            for (name, seen) in pending where now - seen.stableSince >= settings.settle {
                guard let current = observe(name, at: seen.stableSince) else {
                    pending[name] = nil
                    continue
                }
                if current.size == seen.size && current.modified == seen.modified {
                    pending[name] = nil
                    due.append(name)
                } else {
                    pending[name] = Observation(size: current.size, modified: current.modified, stableSince: now)
                }
            }
            await take(due, from: folder)
            if !ready {
                ready = true
                environment.logger.notice("watching \(folder.root) for spec files")
                onReady()
            }
            let settleDue = pending.values.map { $0.stableSince + settings.settle }.min()
            await bell.wait(until: min(settleDue ?? nextRescan, nextRescan))
        }
    }

    /// Size and mtime of a regular file or a symlink in the folder (not following a link: a link is judged, not
    /// read, when it is taken); nil when it is gone or something else.
    private func observe(_ name: String, at instant: ContinuousClock.Instant) -> Observation? {
        var info = stat()
        guard lstat(root + "/" + name, &info) == 0, [S_IFREG, S_IFLNK].contains(info.st_mode & S_IFMT) else { return nil }
        let modified = Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
        return Observation(size: Int64(info.st_size), modified: modified, stableSince: instant)
    }

    /// Validates, accepts and archives files, and rings the dispatcher after each chunk that brought jobs.
    private func take(_ names: [String], from folder: DropFolder) async {
        let doorbell = environment.doorbell
        await DropFolderIntake(ingestor: ingestor, logger: environment.logger).take(names, from: folder) { chunk in
            if chunk.contains(where: \.accepted) { doorbell.ring() }
        }
    }
}
