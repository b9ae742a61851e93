import Foundation
import KlingCore
internal import GRDB
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A file's device and inode: what stays the same while the file is the same file.
public struct FileID: Sendable, Equatable, CustomStringConvertible {
    public var device: UInt64
    public var inode: UInt64

    public init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }

    /// The file at `path` now, not following a final symlink; nil when nothing is there.
    public init?(path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }

    public var description: String { "device \(device), inode \(inode)" }
}

/// What is at the store's path compared with the file the store opened.
public enum StoreFileCheck: Sendable, Equatable {
    case intact
    /// Nothing at the path: deleted or moved away.
    case deleted
    /// Another file at the path.
    case replaced(FileID)
    /// The same file, cut to 0 bytes.
    case emptied
    /// The WAL (`-wal`) or shared-memory (`-shm`) file was deleted or replaced: the latest commits live only in
    /// this process's open copy of it.
    case sidecarLost(String)
}

/// The store's `-wal` and `-shm` files, recorded the first time they are seen.
final class SidecarFiles: Sendable {
    private let seen = Mutex<[String: FileID]>([:])

    /// The first suffix whose file is gone or another file now; records any seen for the first time.
    func lost(besides path: String) -> String? {
        seen.withLock { seen in
            for suffix in ["-wal", "-shm"] {
                let now = FileID(path: path + suffix)
                if let before = seen[suffix] {
                    if now != before { return suffix }
                } else if let now {
                    seen[suffix] = now
                }
            }
            return nil
        }
    }
}

extension JobStore {
    /// The identity row, created for a new store (or one made before stores had identities). A store that already
    /// holds jobs when it gets its identity was made by an older version, which ran real and simulated jobs in one
    /// store: it is taken as real, whoever opens it first, so a first `--simulate` can never claim it.
    static func ensureIdentity(_ db: Database, purpose: StorePurpose) throws -> StoreIdentity {
        let hasJobs = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM job)") ?? false
        let fresh = StoreIdentity(purpose: hasJobs ? .real : purpose)
        try db.execute(
            sql: "INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id', ?), ('created_at', ?), ('purpose', ?)",
            arguments: [fresh.id, timestamp(fresh.createdAt), fresh.purpose.rawValue])
        let rows = Dictionary(
            uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT key, value FROM meta WHERE key IN ('store_id', 'created_at', 'purpose')")
                .map { ($0["key"] as String, $0["value"] as String) })
        guard let id = rows["store_id"], let created = rows["created_at"].flatMap(parseTimestamp),
            let stored = rows["purpose"].flatMap(StorePurpose.init(rawValue:))
        else { throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "the store's identity rows are damaged") }
        return StoreIdentity(id: id, createdAt: created, purpose: stored)
    }

    /// Whether the file this store opened is still the one at its path.
    public func checkFile() -> StoreFileCheck {
        guard let file else { return .intact }
        var info = stat()
        guard lstat(path, &info) == 0 else { return .deleted }
        let now = FileID(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        if now != file { return .replaced(now) }
        if info.st_size == 0 { return .emptied }
        return sidecars.lost(besides: path).map { .sidecarLost((path as NSString).lastPathComponent + $0) } ?? .intact
    }

    /// At the end of a run: every commit into the database file and the WAL emptied, so the file alone is the
    /// store even if this process's last connection is not closed before it exits (a WAL left with frames would be
    /// replayed over whatever file is put at this path later).
    public func checkpointAtExit() {
        try? writer.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    /// Writes every commit still only in the WAL into the database file, through this process's open connection:
    /// after the WAL file was deleted, that connection holds the only copy of them.
    public func checkpoint() throws {
        do {
            try writer.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(FULL)") }
        } catch let error as DatabaseError {
            throw classify(error)
        }
    }

    /// Copies everything this process can still read (through its open connection, even when the file was
    /// unlinked) to a new database at `destination`.
    public func rescue(to destination: String) throws {
        do {
            try writer.writeWithoutTransaction { db in try db.execute(sql: "VACUUM INTO ?", arguments: [destination]) }
        } catch let error as DatabaseError {
            throw classify(error)
        }
    }

    /// What a rescued copy holds, for the operator deciding whether to put it back: SQLite's integrity check and
    /// the jobs it knows.
    public static func describeCopy(at path: String) -> String {
        do {
            var configuration = Configuration()
            configuration.readonly = true
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            return try queue.read { db in
                let integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check")
                let jobs = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job") ?? 0
                let atFal = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job WHERE request_id IS NOT NULL AND state NOT IN ('completed', 'failed', 'cancelled')") ?? 0
                let check = integrity == ["ok"] ? "it passes SQLite's integrity check" : "it FAILS SQLite's integrity check (\(integrity.prefix(3).joined(separator: "; "))): parts were lost"
                return "\(jobs) jobs, \(atFal) with a request at fal; \(check)"
            }
        } catch {
            return "it cannot be read (\(error)): parts were lost"
        }
    }

    /// Writes the marker for `identity` in `directory` (beside a rescued copy, when the whole folder was lost).
    public static func writeMarker(_ identity: StoreIdentity, in directory: String) throws {
        try StoreMarker.write(identity, in: directory)
    }

    /// Where `rescue` copies go in a state folder: `kling-batch.sqlite.rescued-<UTC time>`.
    public static func rescuePath(in directory: String, at now: Date = Date()) -> String {
        (directory as NSString).appendingPathComponent(fileName + ".rescued-" + compactTimestamp(now))
    }

    /// The rescued copies in a state folder, oldest first.
    static func rescuedCopies(in directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasPrefix(fileName + ".rescued-") }.sorted().map { (directory as NSString).appendingPathComponent($0) }
    }

    /// Starts over in `directory`: moves the database (and its WAL) aside and forgets the marker, so the next
    /// open creates an empty store. Returns where the old files went. The caller holds the state lock.
    public static func reset(directory: String, at now: Date = Date()) throws -> [String] {
        var moved: [String] = []
        let suffix = ".reset-" + compactTimestamp(now)
        for name in [fileName, fileName + "-wal", fileName + "-shm"] {
            let source = (directory as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: source) else { continue }
            let target = source + suffix
            guard rename(source, target) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            moved.append(target)
        }
        StoreMarker.remove(in: directory)
        return moved
    }

    /// `20261201T144312Z`: sorts by time and is safe in a file name.
    static func compactTimestamp(_ date: Date) -> String {
        var time = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z"
    }

    static func parseTimestamp(_ text: String) -> Date? { Date(iso8601: text) }
}
