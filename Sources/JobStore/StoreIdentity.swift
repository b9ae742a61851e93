import Foundation

/// What a store was made for. A simulated run's jobs, spend and request URLs (an emulator on a loopback port)
/// must never mix with a real account's, so each store says which it is and the other kind is refused.
public enum StorePurpose: String, Sendable, Codable, CaseIterable {
    case real
    case simulated

    /// How the store is named to people.
    public var label: String { self == .real ? "real (fal)" : "simulated (--simulate)" }
}

/// Who a store is: a random id fixed at creation, when, and for what.
///
/// The same identity is kept in the database (`meta`) and in a small marker file beside it. The marker outlives
/// the database: a store deleted, emptied or swapped for another is noticed at the next open instead of being
/// silently replaced by a new, empty one that has forgotten every job and every request at fal.
public struct StoreIdentity: Sendable, Codable, Equatable, CustomStringConvertible {
    public var id: String
    public var createdAt: Date
    public var purpose: StorePurpose

    public init(id: String = UUID().uuidString.lowercased(), createdAt: Date = Date(), purpose: StorePurpose) {
        self.id = id
        self.createdAt = createdAt
        self.purpose = purpose
    }

    public var description: String { "store \(id) (\(purpose.label), created \(JobStore.timestamp(createdAt)))" }
}

/// The marker file `kling-batch.store-id` beside the database.
enum StoreMarker {
    static let fileName = "kling-batch.store-id"

    static func path(in directory: String) -> String { (directory as NSString).appendingPathComponent(fileName) }

    static func read(in directory: String) -> StoreIdentity? {
        guard let data = FileManager.default.contents(atPath: path(in: directory)) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(StoreIdentity.self, from: data)
    }

    /// Written once, when the store is created (or first opened by a version that writes markers).
    static func write(_ identity: StoreIdentity, in directory: String) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let target = path(in: directory)
        let temporary = target + ".tmp-\(getpid())"
        try encoder.encode(identity).write(to: URL(fileURLWithPath: temporary), options: .atomic)
        guard rename(temporary, target) == 0 else {
            unlink(temporary)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
    }

    static func remove(in directory: String) { unlink(path(in: directory)) }
}

/// Why a store was not opened, with what to do about it.
public enum StoreRefusal: Sendable, Equatable, CustomStringConvertible {
    /// No store here, and the command only reads an existing one.
    case missing(path: String)
    /// The marker (or a rescued copy) says a store lived here, but the database file is gone.
    case vanished(path: String, identity: StoreIdentity?, copies: [String])
    /// The database file is empty (0 bytes): not a store, whatever was here before.
    case emptied(path: String, identity: StoreIdentity?)
    /// The database is another store than the marker names.
    case replaced(path: String, expected: StoreIdentity, found: StoreIdentity)
    /// A real run on a simulated store, or the reverse.
    case wrongPurpose(path: String, store: StorePurpose, wanted: StorePurpose)

    public var description: String {
        switch self {
        case .missing(let path):
            return "no job store at \(path); nothing has run with this state folder yet (see --state-dir)"
        case .vanished(let path, let identity, let copies):
            return "the job store \(path) is gone: this folder held \(identity.map(\.description) ?? "a store (a copy of it was saved here)"), and its database file was deleted or moved. "
                + "It is not replaced by an empty one, because that would forget every job and every request already paid for at fal. "
                + restoreAdvice(path: path, copies: copies)
        case .emptied(let path, let identity):
            return "the job store \(path) is an empty (0-byte) file" + (identity.map { ", where \($0) used to be" } ?? "")
                + "; it is not taken for a new store. Restore the database from a backup, or move the empty file aside and run "
                + "`kling-batch store reset` to start an empty store on purpose."
        case .replaced(let path, let expected, let found):
            return "the job store \(path) is \(found), not \(expected) that this folder was made with; "
                + "refusing to run on a store that is not the one its jobs and requests belong to. Put the right database back, or run "
                + "`kling-batch store reset` to adopt this one on purpose."
        case .wrongPurpose(let path, _, let wanted):
            return wanted == .real
                ? "the job store \(path) was made by --simulate runs; a real run will not use it (its requests point at an emulator that is gone, and "
                    + "its spend is not real). Use another --state-dir, or the default one, for real runs."
                : "the job store \(path) holds real jobs; --simulate will not use it (simulated jobs and spend must not mix with a real account's). "
                    + "Leave out --state-dir to use the simulated store, or give --simulate its own --state-dir."
        }
    }

    private func restoreAdvice(path: String, copies: [String]) -> String {
        if let copy = copies.last {
            return "A copy saved by the process that saw it vanish is at \(copy): with no kling-batch running, `mv \(copy) \(path)` and start again. "
                + "Or run `kling-batch store reset` to start an empty store on purpose."
        }
        return "Restore it from a backup, or run `kling-batch store reset` to start an empty store on purpose."
    }
}
