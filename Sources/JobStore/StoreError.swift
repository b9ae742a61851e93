/// Why a store operation did not happen.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The job was not in the expected state: another component or process moved it first (a cancel, say).
    case stale(jobID: Int64, expected: [JobState], actual: JobState?)
    /// A move the state machine does not allow: a programming error, refused rather than written.
    case illegalTransition(from: JobState, to: JobState)
    /// The database was written by a newer kling-batch.
    case newerSchema(path: String)
    case noSuchJob(Int64)
    /// SQLite could not read or write the file (a full disk, a read-only remount, an I/O error). Nothing was
    /// changed; the same call may work once the disk does. Never a reason to submit anything again.
    case unavailable(StoreFailure)
    /// The database is damaged; only an operator can decide what to do.
    case corrupt(path: String, detail: String)
    /// The store is not one this command may use, or not there any more (see `StoreRefusal`).
    case refused(StoreRefusal)

    /// Whether waiting (for space, for a remount) may make the same call work.
    public var isTransient: Bool {
        if case .unavailable = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .stale(let id, let expected, let actual):
            return "job \(id) is \(actual?.label ?? "gone"), not \(expected.map(\.label).joined(separator: " or ")); something else moved it first"
        case .illegalTransition(let from, let to):
            return "a job cannot move from \(from.label) to \(to.label)"
        case .newerSchema(let path):
            return "the store at \(path) was written by a newer kling-batch; upgrade this one"
        case .noSuchJob(let id):
            return "no job \(id)"
        case .unavailable(let failure):
            return failure.description
        case .corrupt(let path, let detail):
            return "the store at \(path) is damaged (\(detail)); run `kling-batch store check` and restore a backup"
        case .refused(let refusal):
            return refusal.description
        }
    }
}

/// A store the local machine would not let us write or read, with SQLite's own words.
public struct StoreFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// SQLITE_FULL: the disk (or a quota) is full.
        case full
        /// SQLITE_READONLY or SQLITE_PERM: a read-only remount or a permission taken away.
        case readOnly = "read_only"
        /// SQLITE_IOERR: the disk failed a read or write.
        case io
        /// SQLITE_CANTOPEN: a file SQLite needs (the WAL, a temp file) cannot be opened.
        case cantOpen = "cant_open"
        /// SQLITE_BUSY or SQLITE_LOCKED past the busy timeout: another process holds the write lock.
        case busy
    }

    public var kind: Kind
    public var path: String
    /// SQLite's message, e.g. "database or disk is full".
    public var message: String

    public var description: String {
        switch kind {
        case .full: "the job store \(path) cannot be written: the disk is full (\(message))"
        case .readOnly: "the job store \(path) cannot be written: it is read-only (\(message))"
        case .io: "the job store \(path) cannot be written: disk I/O error (\(message))"
        case .cantOpen: "the job store \(path) cannot open a file it needs (\(message))"
        case .busy: "the job store \(path) is locked by another process (\(message))"
        }
    }
}
