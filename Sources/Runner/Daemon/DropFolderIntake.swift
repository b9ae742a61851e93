import Foundation
import JobStore
import KlingSpec
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Takes spec files out of a drop folder, the same way for the daemon's watcher and for `run --once`: validated,
/// accepted in chunks, each moved to `accepted/<day>/` or to `rejected/` with its `.errors.txt`.
struct DropFolderIntake: Sendable {
    let ingestor: BatchIngestor
    let logger: Logger

    /// What became of one file; `movedTo` is nil when it stays in the folder for the next look (the move
    /// failed), and `outcome` too when the store could not take it (`storeError` says why).
    struct Taken: Sendable {
        var name: String
        var outcome: BatchIngestor.Outcome?
        var movedTo: String?
        var storeError: String?

        var accepted: Bool {
            if case .accepted? = outcome { return true }
            return false
        }
    }

    /// Files accepted per store transaction: large enough that a folder of thousands of files is not one commit
    /// each, small enough that the first jobs reach the dispatcher without waiting for the whole folder.
    static let chunkSize = 64

    /// Validates, accepts and archives `names`; a store failure leaves them in place for the next look. Each
    /// chunk goes to `handle` as soon as it is taken, so that its jobs can start before the rest is read and a folder
    /// of 10,000 files never holds 10,000 reports in memory at once.
    func take(_ names: [String], from folder: DropFolder, handle: ([Taken]) -> Void) async {
        var start = 0
        while start < names.count {
            let end = min(names.count, start + Self.chunkSize)
            handle(await take(chunk: names[start..<end], from: folder))
            start = end
        }
    }

    private func take(chunk names: ArraySlice<String>, from folder: DropFolder) async -> [Taken] {
        var taken: [Taken] = []
        var valid: [(name: String, path: String, report: SpecReport, sha256: String)] = []
        for name in names {
            let path = folder.root + "/" + name
            let report: SpecReport
            switch folder.read(name) {
            case .contents(let bytes):
                report = ingestor.validator.validate(contents: bytes, path: path)
            case .refused(let message):
                // Refused unread: the target's content must reach neither the errors file nor the log.
                taken.append(settle(name, at: path, .rejected(.refused(file: path, message: message)), in: folder))
                continue
            case .gone:
                continue
            }
            if report.isValid, let sha256 = report.sha256 {
                valid.append((name, path, report, sha256))
            } else {
                taken.append(settle(name, at: path, .rejected(report), in: folder))
            }
        }
        let outcomes: [BatchIngestor.Outcome]
        do {
            outcomes = try await ingestor.acceptAll(valid.map { ($0.report, $0.sha256) })
        } catch {
            for file in valid {
                logger.error("cannot take \(file.name) now (\(error)); it stays in \(folder.root) and is tried again at the next look")
                taken.append(Taken(name: file.name, outcome: nil, movedTo: nil, storeError: "\(error)"))
            }
            return taken
        }
        for (file, outcome) in zip(valid, outcomes) {
            taken.append(settle(file.name, at: file.path, outcome, in: folder))
        }
        return taken
    }

    /// Moves a file to where its outcome says and logs why; a failed move leaves it for the next look, where an
    /// accepted file is recognised as such and only moved.
    private func settle(_ name: String, at path: String, _ outcome: BatchIngestor.Outcome, in folder: DropFolder) -> Taken {
        do {
            return Taken(name: name, outcome: outcome, movedTo: try archive(name, at: path, outcome, in: folder))
        } catch {
            logger.error("cannot move \(name) now (\(error)); it stays in \(folder.root) and is tried again at the next look")
            return Taken(name: name, outcome: outcome, movedTo: nil)
        }
    }

    private func archive(_ name: String, at path: String, _ outcome: BatchIngestor.Outcome, in folder: DropFolder) throws -> String {
        switch outcome {
        case .accepted(let batch, let jobs, let warnings):
            for warning in warnings { logger.warning("\(warning)") }
            let moved = try folder.archiveAccepted(name)
            logger.notice("accepted \(name) as batch \(batch.name) (\(jobs.count) job\(jobs.count == 1 ? "" : "s")); moved to \(moved)")
            return moved
        case .duplicate(let existing) where existing.sourcePath == path && (Self.modified(path) ?? .distantFuture) <= existing.acceptedAt:
            // This very file was accepted, then the process stopped before moving it: finish the move.
            let moved = try folder.archiveAccepted(name)
            logger.notice("\(name) was accepted as batch \(existing.name) before a restart; moved to \(moved)")
            return moved
        case .duplicate(let existing):
            let reason = "\(name): the same content was already accepted as batch \(existing.name) (from \(existing.sourcePath)); not running it again. "
                + "To run it again: kling-batch rerun <this file>"
            let moved = try folder.archiveRejected(name, reasons: [reason])
            logger.notice("duplicate: \(name) has the same content as batch \(existing.name); not run again; moved to \(moved)")
            return moved
        case .rejected(let report):
            let moved = try folder.archiveRejected(name, reasons: DropFolder.reasons(for: report))
            for diagnostic in report.diagnostics { logger.error("\(diagnostic)") }
            logger.error("rejected \(name): \(report.errors.count) problem\(report.errors.count == 1 ? "" : "s"); moved to \(moved) with \((moved as NSString).lastPathComponent).errors.txt")
            return moved
        }
    }

    /// The modification time of the file (not of a link's target); nil when it is gone.
    static func modified(_ path: String) -> Date? { look(path)?.modified }

    /// Modification time and size from one lstat (a link is judged, not followed); nil when it is gone.
    static func look(_ path: String) -> (modified: Date, size: Int64)? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return (Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9), Int64(info.st_size))
    }

    /// The spec files directly in the folder now, in name order.
    static func names(in folder: DropFolder) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.root)) ?? []).filter(SpecFiles.isSpecFile).sorted()
    }
}
