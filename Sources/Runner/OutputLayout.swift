import Foundation
import KlingCore
import Synchronization
import JobStore

#if canImport(Glibc)
import Glibc
#endif

/// Where a job's files go: `<out>/<YYYY-MM-DD>/<batch>/<job>.mp4` and `<job>.json` beside it.
public struct OutputLayout: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    public func folder(of batch: BatchRecord) -> String { (root as NSString).appendingPathComponent(batch.outputDir) }
    public func videoPath(of job: JobRecord, in batch: BatchRecord) -> String { folder(of: batch) + "/\(job.name).mp4" }
    public func manifestPath(of job: JobRecord, in batch: BatchRecord) -> String { folder(of: batch) + "/\(job.name).json" }

    /// The local calendar day used for a batch's folder.
    public static func day(of date: Date) -> String {
        let components = Calendar.current.dateComponents([.year, .month, .day], from: date)
        let (year, month, day) = (components.year ?? 0, components.month ?? 0, components.day ?? 0)
        return "\(year)-\(month < 10 ? "0" : "")\(month)-\(day < 10 ? "0" : "")\(day)"
    }

    /// Whether a batch folder already exists on disk (a batch from another store, say).
    /// The tree a command from the CLI writes into: `--out` when given, else the one the runner records, else the
    /// configured one. A cancel run from another folder must put its manifest beside the runner's videos.
    public static func forCommand(flag: String?, configured: String, store: any JobQueue) async throws -> OutputLayout {
        if let flag { return OutputLayout(root: flag) }
        return OutputLayout(root: try await store.outputRoot() ?? configured)
    }

    /// `root` as an absolute path, for recording where the runner writes.
    public var absoluteRoot: String {
        URL(fileURLWithPath: root, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)).standardizedFileURL.path
    }

    public func isTaken(_ relative: String) -> Bool {
        FileManager.default.fileExists(atPath: (root as NSString).appendingPathComponent(relative))
    }
}

/// Writes a file so that it is either absent or complete: temp file, fsync, rename. A failure to write throws
/// `LocalWriteError` with its errno (a full disk, a read-only remount), and leaves no temp file behind.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String, what: String = "file") throws {
        let folder = (path as NSString).deletingLastPathComponent
        try LocalWriteError.makeFolders(folder)
        // Unique per write: two tasks of one process may write the same file at once (a contact sheet).
        let serial = writes.add(1, ordering: .relaxed).newValue
        let temporary = folder + "/." + (path as NSString).lastPathComponent + ".\(serial).tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LocalWriteError.current(what, path: path) }
        var failure: LocalWriteError?
        data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let count = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if count <= 0 {
                    failure = .current(what, path: path)
                    return
                }
                offset += count
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = .current(what, path: path) }
        close(fd)
        if failure == nil, rename(temporary, path) != 0 { failure = .current(what, path: path) }
        if let failure {
            unlink(temporary)
            throw failure
        }
        removeLeftovers(of: path)
    }

    /// Removes temp files for `path` left by an earlier process killed mid-write: only this process writes
    /// (the state lock), so a `.<name>.tmp-<pid>` of a dead pid is garbage of our own, never a user's file.
    /// Each folder is swept once per process (leftovers only come from an earlier process), so a batch of
    /// hundreds of jobs does not list its folder hundreds of times.
    static func removeLeftovers(of path: String) {
        let folder = (path as NSString).deletingLastPathComponent
        guard swept.withLock({ $0.insert(folder).inserted }) else { return }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where name.hasPrefix(".") {
            // Only a dead writer's file: a CLI command may be writing a manifest here right now.
            guard let marker = name.range(of: ".tmp-", options: .backwards), let pid = Int32(name[marker.upperBound...]),
                kill(pid, 0) != 0, errno == ESRCH
            else { continue }
            unlink(folder + "/" + name)
        }
    }

    private static let swept = Mutex<Set<String>>([])
    private static let writes = Atomic<Int>(0)
}
