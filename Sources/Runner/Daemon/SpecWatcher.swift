import Foundation
import JobStore
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
                for name in scan(folder) where pending[name] == nil {
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

    /// The spec files directly in the folder now.
    private func scan(_ folder: DropFolder) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.root)) ?? []).filter(SpecFiles.isSpecFile).sorted()
    }

    /// Size and mtime of a regular file or a symlink in the folder (not following a link: a link is judged, not
    /// read, when it is taken); nil when it is gone or something else.
    private func observe(_ name: String, at instant: ContinuousClock.Instant) -> Observation? {
        var info = stat()
        guard lstat(root + "/" + name, &info) == 0, [S_IFREG, S_IFLNK].contains(info.st_mode & S_IFMT) else { return nil }
        let modified = Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
        return Observation(size: Int64(info.st_size), modified: modified, stableSince: instant)
    }

    /// Files accepted per store transaction: large enough that a folder of thousands of files is not one commit
    /// each, small enough that the first jobs reach the dispatcher without waiting for the whole folder.
    static let chunkSize = 64

    /// Validates, accepts and archives files; a store failure leaves them in place for the next rescan.
    private func take(_ names: [String], from folder: DropFolder) async {
        var start = 0
        while start < names.count {
            let end = min(names.count, start + Self.chunkSize)
            await take(chunk: names[start..<end], from: folder)
            start = end
        }
    }

    private func take(chunk names: ArraySlice<String>, from folder: DropFolder) async {
        var valid: [(name: String, path: String, report: SpecReport, sha256: String)] = []
        for name in names {
            let path = folder.root + "/" + name
            let report: SpecReport
            switch folder.read(name) {
            case .contents(let bytes):
                report = ingestor.validator.validate(contents: bytes, path: path)
            case .refused(let message):
                // Refused unread: the target's content must reach neither the errors file nor the log.
                settle(name, at: path, .rejected(.refused(file: path, message: message)), in: folder)
                continue
            case .gone:
                continue
            }
            if report.isValid, let sha256 = report.sha256 {
                valid.append((name, path, report, sha256))
            } else {
                settle(name, at: path, .rejected(report), in: folder)
            }
        }
        let outcomes: [BatchIngestor.Outcome]
        do {
            outcomes = try await ingestor.acceptAll(valid.map { ($0.report, $0.sha256) })
        } catch {
            for file in valid {
                environment.logger.error("cannot take \(file.name) now (\(error)); it stays in \(folder.root) and is tried again at the next rescan")
            }
            return
        }
        var acceptedAny = false
        for (file, outcome) in zip(valid, outcomes) {
            if case .accepted = outcome { acceptedAny = true }
            settle(file.name, at: file.path, outcome, in: folder)
        }
        if acceptedAny { environment.doorbell.ring() }
    }

    /// Moves a file to where its outcome says and logs why; a failed move leaves it for the next rescan, where an
    /// accepted file is recognised as such and only moved.
    private func settle(_ name: String, at path: String, _ outcome: BatchIngestor.Outcome, in folder: DropFolder) {
        let logger = environment.logger
        do {
            switch outcome {
            case .accepted(let batch, let jobs, let warnings):
                for warning in warnings { logger.warning("\(warning)") }
                let moved = try folder.archiveAccepted(name)
                logger.notice("accepted \(name) as batch \(batch.name) (\(jobs.count) job\(jobs.count == 1 ? "" : "s")); moved to \(moved)")
            case .duplicate(let existing) where existing.sourcePath == path && (observe(name, at: .now)?.modified ?? .distantFuture) <= existing.acceptedAt:
                // This very file was accepted, then the process stopped before moving it: finish the move.
                let moved = try folder.archiveAccepted(name)
                logger.notice("\(name) was accepted as batch \(existing.name) before a restart; moved to \(moved)")
            case .duplicate(let existing):
                let reason = "\(name): the same content was already accepted as batch \(existing.name) (from \(existing.sourcePath)); not running it again. "
                    + "To run it again: kling-batch rerun <this file>"
                let moved = try folder.archiveRejected(name, reasons: [reason])
                logger.notice("duplicate: \(name) has the same content as batch \(existing.name); not run again; moved to \(moved)")
            case .rejected(let report):
                let moved = try folder.archiveRejected(name, reasons: DropFolder.reasons(for: report))
                for diagnostic in report.diagnostics { logger.error("\(diagnostic)") }
                logger.error("rejected \(name): \(report.errors.count) problem\(report.errors.count == 1 ? "" : "s"); moved to \(moved) with \((moved as NSString).lastPathComponent).errors.txt")
            }
        } catch {
            logger.error("cannot move \(name) now (\(error)); it stays in \(folder.root) and is tried again at the next rescan")
        }
    }
}
