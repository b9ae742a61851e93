import Foundation
internal import GRDB

/// The one source of truth: batches, jobs, attempts, events, the spend ledger and the upload cache, in SQLite.
///
/// Shaped like GRDB's `AppDatabase`: one façade whose write methods keep the invariants, one migrator, and a
/// WAL database that the runner and any number of CLI processes share. Write transactions begin IMMEDIATE
/// (GRDB's default for writes) and wait on a busy timeout, so a second process never meets "database is locked".
public struct JobStore: Sendable {
    let writer: any DatabaseWriter
    /// The database file, or `:memory:`.
    public let path: String
    /// Who this store is; fixed at creation.
    public let identity: StoreIdentity
    /// The database file's device and inode when it was opened: a runner compares them with what is at `path`
    /// now to notice the file deleted or replaced under it (SQLite would go on writing to the unlinked inode).
    public let file: FileID?
    /// The WAL and shared-memory files as first seen: deleting either under a running runner loses what is in them.
    let sidecars = SidecarFiles()

    /// The database file's name inside the state folder.
    public static let fileName = "kling-batch.sqlite"

    /// Whether `open` may create a store that is not there yet.
    public enum OpenMode: Sendable {
        /// Create the store when the folder has never held one (the runner).
        case createIfNew
        /// Only open an existing store (operator commands): a typo in --state-dir must not look like an empty store.
        case existing
    }

    /// Opens the store in `directory`, migrating it to the current schema; creates it when `mode` allows and the
    /// folder has never held one. Throws `StoreError.refused` for a store that vanished, was emptied or swapped,
    /// or was made for the other `purpose` (nil accepts either: commands that only read or change jobs).
    public static func open(directory: String, purpose: StorePurpose? = .real, mode: OpenMode = .createIfNew) throws -> JobStore {
        let path = (directory as NSString).appendingPathComponent(fileName)
        let marker = StoreMarker.read(in: directory)
        var info = stat()
        let exists = stat(path, &info) == 0
        if !exists || info.st_size == 0 {
            // A folder that held a store (its marker, a rescued copy, a WAL in use) never gets a new one silently.
            let copies = rescuedCopies(in: directory)
            if !exists && (marker != nil || !copies.isEmpty) {
                throw StoreError.refused(.vanished(path: path, identity: marker, copies: copies))
            }
            if exists && (marker != nil || !copies.isEmpty || FileManager.default.fileExists(atPath: path + "-wal")) {
                throw StoreError.refused(.emptied(path: path, identity: marker))
            }
            guard mode == .createIfNew else { throw StoreError.refused(.missing(path: path)) }
            try create(in: directory, purpose: purpose ?? .real)
        }
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: configuration())
        } catch let error as DatabaseError {
            throw classify(error, path: path)
        }
        let store = try JobStore(writer: pool, path: path, newPurpose: purpose ?? .real)
        if let marker, marker.id != store.identity.id {
            throw StoreError.refused(.replaced(path: path, expected: marker, found: store.identity))
        }
        if let purpose, store.identity.purpose != purpose {
            throw StoreError.refused(.wrongPurpose(path: path, store: store.identity.purpose, wanted: purpose))
        }
        // An older version wrote no marker, and a CLI user may not be allowed to write one: best effort.
        if marker == nil { try? StoreMarker.write(store.identity, in: directory) }
        return store
    }

    /// Makes a new store in full under a temporary name (schema, identity, then the marker beside it) and only
    /// then renames it into place: a disk that fills up half-way leaves no empty database to be refused later,
    /// and no store without its marker.
    static func create(in directory: String, purpose: StorePurpose) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        let path = (directory as NSString).appendingPathComponent(fileName)
        let temporary = path + ".new-\(getpid())"
        func removeTemporary() { for suffix in ["", "-wal", "-shm"] { unlink(temporary + suffix) } }
        removeTemporary()
        do {
            let identity: StoreIdentity
            do {
                // Closed at the end of this scope: its WAL is checkpointed into the file and removed.
                identity = try JobStore(writer: DatabasePool(path: temporary, configuration: configuration()), path: temporary, newPurpose: purpose).identity
            } catch let error as DatabaseError {
                throw classify(error, path: temporary)
            }
            try StoreMarker.write(identity, in: directory)
            guard rename(temporary, path) == 0 else {
                let code = errno
                StoreMarker.remove(in: directory)
                throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
            }
        } catch {
            removeTemporary()
            throw error
        }
    }

    /// A private in-memory store, for tests.
    public static func inMemory(purpose: StorePurpose = .real) throws -> JobStore {
        try JobStore(writer: DatabaseQueue(configuration: configuration()), path: ":memory:", newPurpose: purpose)
    }

    init(writer: any DatabaseWriter, path: String, newPurpose: StorePurpose) throws {
        let migrator = Self.migrator
        do {
            if try writer.read({ try migrator.hasBeenSuperseded($0) }) { throw StoreError.newerSchema(path: path) }
            try migrator.migrate(writer)
            identity = try writer.write { db in try Self.ensureIdentity(db, purpose: newPurpose) }
        } catch let error as DatabaseError {
            throw Self.classify(error, path: path)
        }
        self.writer = writer
        self.path = path
        file = path == ":memory:" ? nil : FileID(path: path)
    }

    static func configuration() -> Configuration {
        var configuration = Configuration()
        configuration.label = "kling-batch"
        // Another process writing (the daemon, while a CLI command retries a job) makes us wait, not fail.
        configuration.busyMode = .timeout(15)
        configuration.prepareDatabase { db in
            // WAL with NORMAL sync survives a process crash with every commit; the WAL file is truncated back to
            // 32 MB after each checkpoint, so it cannot grow without bound.
            if !db.configuration.readonly {
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
                try db.execute(sql: "PRAGMA journal_size_limit = 33554432")
            }
        }
        return configuration
    }

    // MARK: - The guarded transition

    /// Moves a job from `from` to `to` with `fields` in one guarded UPDATE, and logs the move as an event (one an
    /// operator caused, when `byOperator`). Throws `StoreError.stale` when the job is no longer in `from`. For tests
    /// (through `@testable`) and the store's own methods only: nothing else may move a job.
    @discardableResult
    func transition(
        _ id: Int64, from: JobState, to: JobState, set fields: [JobField] = [], event: String, at now: Date = Date()
    ) throws -> JobRecord {
        try write { db in try Self.transition(db, id, from: from, to: to, set: fields, event: event, at: now) }
    }

    static func transition(
        _ db: Database, _ id: Int64, from: JobState, to: JobState, set fields: [JobField], event: String, byOperator: Bool = false, at now: Date
    ) throws -> JobRecord {
        guard from.canMove(to: to) else { throw StoreError.illegalTransition(from: from, to: to) }
        let (statement, arguments) = try guardedUpdate(db, id, in: from, moveTo: to, set: fields, at: now)
        guard let job = try ColumnReader.fetchOne(statement, arguments: arguments, JobRecord.init) else {
            let actual = try String.fetchOne(db, sql: "SELECT state FROM job WHERE id = ?", arguments: [id])
            throw StoreError.stale(jobID: id, expected: [from], actual: actual.flatMap(JobState.init(rawValue:)))
        }
        try insertEvent(db, jobID: id, at: now, kind: .state, from: from, to: to, message: event, byOperator: byOperator)
        if to.isTerminal {
            try settleSpend(db, jobID: id, outcome: to)
            try noteFinal(db, job, at: now)
        }
        return job
    }

    /// Changes columns of a job that is still in `state`, without moving it; false when it has moved.
    static func update(_ db: Database, _ id: Int64, in state: JobState, set fields: [JobField], at now: Date) throws -> Bool {
        let (statement, arguments) = try guardedUpdate(db, id, in: state, moveTo: nil, set: fields, at: now)
        try statement.execute(arguments: arguments)
        return db.changesCount == 1
    }

    /// `UPDATE job SET … WHERE id = ? AND state = ?`, the one shape every change to a job takes (`moveTo` only from
    /// `transition`, which has checked the move against the table). The same change
    /// always has the same SQL, so the statement is cached: no parsing, no GRDB authorizer, after the first time.
    static func guardedUpdate(
        _ db: Database, _ id: Int64, in state: JobState, moveTo next: JobState?, set fields: [JobField], at now: Date
    ) throws -> (Statement, StatementArguments) {
        var sql = "UPDATE job SET updated_at = ?"
        var arguments: [(any DatabaseValueConvertible)?] = [now]
        if let next {
            sql += ", state = ?"
            arguments.append(next.rawValue)
        }
        for field in fields {
            let (assignment, value) = field.assignment
            sql += ", " + assignment
            arguments.append(value)
        }
        // A move returns the job as it now is; a plain update only says whether it applied.
        sql += " WHERE id = ? AND state = ?" + (next == nil ? "" : " RETURNING *")
        arguments += [id, state.rawValue]
        return (try db.cachedStatement(sql: sql), StatementArguments(arguments))
    }

    static func insertEvent(
        _ db: Database, jobID: Int64, at: Date, kind: JobEvent.Kind, from: JobState? = nil, to: JobState? = nil, message: String,
        byOperator: Bool = false
    ) throws {
        try db.cachedStatement(sql: "INSERT INTO event (job_id, at, kind, from_state, to_state, message, by_operator) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .execute(arguments: [jobID, at, kind.rawValue, from?.rawValue, to?.rawValue, message, byOperator])
    }
}

extension JobStore: QueueHealth {
    public var location: String { path }
}
