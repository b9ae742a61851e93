import Foundation
internal import GRDB

extension JobStore {
    /// Every write goes through here: GRDB's errors for a disk that refuses become `StoreError`s that say what to
    /// do (wait, or stop), so no caller above the store needs to know SQLite's result codes.
    func write<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try writer.write(body)
        } catch let error as DatabaseError {
            throw classify(error)
        }
    }

    /// Every read goes through here, for the same reason.
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try writer.read(body)
        } catch let error as DatabaseError {
            throw classify(error)
        }
    }

    func classify(_ error: DatabaseError) -> any Error { Self.classify(error, path: path) }

    /// What a SQLite error means for the caller; errors of our own making (constraints, misuse) pass unchanged.
    static func classify(_ error: DatabaseError, path: String) -> any Error {
        let message = error.message ?? "\(error.resultCode)"
        func unavailable(_ kind: StoreFailure.Kind) -> StoreError { .unavailable(StoreFailure(kind: kind, path: path, message: message)) }
        switch error.resultCode {
        case .SQLITE_FULL: return unavailable(.full)
        case .SQLITE_READONLY, .SQLITE_PERM: return unavailable(.readOnly)
        case .SQLITE_IOERR: return unavailable(.io)
        case .SQLITE_CANTOPEN: return unavailable(.cantOpen)
        case .SQLITE_BUSY, .SQLITE_LOCKED: return unavailable(.busy)
        case .SQLITE_CORRUPT, .SQLITE_NOTADB: return StoreError.corrupt(path: path, detail: message)
        default: return error
        }
    }

    /// A write that proves the store can be written again (after a full disk, a remount). It carries a few pages
    /// of padding: on a nearly full disk one tiny row can still fit where the runner's next real commit would not,
    /// and a probe that says "writable" too early only makes the pause come and go.
    public func probeWrite(at now: Date = Date()) throws {
        try write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_write_probe', ?)",
                arguments: [Self.timestamp(now) + String(repeating: " ", count: Self.probePadding)])
        }
    }

    /// Bytes of padding in a probe write: about as much as a job's transition writes.
    static let probePadding = 12 * 1024
}
