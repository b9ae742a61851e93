import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Local images already read and hashed, shared by every file one validator checks: a folder of 10,000
/// one-job specs that all point at the same reference image reads and hashes it once, not 10,000 times.
///
/// An entry is used only while the file's identity (device, inode, size, modification and change times, to
/// the nanosecond) is what it was when read, so an image edited, replaced or touched is read again.
public final class ImageInspectionCache: Sendable {
    /// What `stat` says about a file; any write, rename over or `touch` changes it.
    struct Identity: Hashable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var modified: timespec
        var changed: timespec

        init(_ info: stat) {
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
            size = Int64(info.st_size)
            modified = info.st_mtim
            changed = info.st_ctim
        }

        static func == (a: Identity, b: Identity) -> Bool {
            a.device == b.device && a.inode == b.inode && a.size == b.size
                && a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec
                && a.changed.tv_sec == b.changed.tv_sec && a.changed.tv_nsec == b.changed.tv_nsec
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(inode)
            hasher.combine(size)
            hasher.combine(modified.tv_nsec)
        }
    }

    /// A file's checked content; `written` is filled in per reference.
    struct Entry {
        var identity: Identity
        var sha256: String
        var byteCount: Int
        var header: ImageHeader
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let capacity: Int

    /// `capacity` bounds memory for a validator that sees very many distinct images; past it the cache starts over.
    public init(capacity: Int = 4096) {
        self.capacity = capacity
    }

    func lookup(_ path: String, identity: Identity) -> Entry? {
        entries.withLock { entries in
            guard let entry = entries[path], entry.identity == identity else { return nil }
            return entry
        }
    }

    func store(_ path: String, _ entry: Entry) {
        entries.withLock { entries in
            if entries.count >= capacity && entries[path] == nil { entries.removeAll(keepingCapacity: true) }
            entries[path] = entry
        }
    }

    /// How many images are remembered (for tests).
    public var count: Int { entries.withLock { $0.count } }
}
