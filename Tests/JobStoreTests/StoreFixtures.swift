import Foundation
import JobStore
import TestSupport

/// How a test gets a store: in memory, or a file pool in a temp folder (as the daemon and CLI share it).
enum StoreKind: String, CaseIterable, CustomStringConvertible, Sendable {
    case memory, file
    var description: String { rawValue }

    func make() throws -> (JobStore, TemporaryDirectory?) {
        switch self {
        case .memory: return (try JobStore.inMemory(), nil)
        case .file:
            let directory = try TemporaryDirectory("store")
            return (try JobStore.open(directory: directory.path), directory)
        }
    }
}

func newBatch(_ stem: String = "promo", sha: String = UUID().uuidString, jobs: Int = 2, day: String = "2026-11-25") -> NewBatch {
    NewBatch(
        stem: stem, sourcePath: "/jobs/\(stem).yaml", sourceSHA256: sha, day: day,
        jobs: (1...max(1, jobs)).map { NewJob(name: "\(stem)-\($0)", specJSON: "{}", endpoint: "fal-ai/kling-video/o1/reference-to-video", durationSeconds: 5, estimatedCostMicros: 560_000) })
}

func acceptedJobs(_ store: JobStore, _ batch: NewBatch) throws -> [JobRecord] {
    guard case .accepted(_, let jobs) = try store.accept(batch) else { throw HarnessError("not accepted") }
    return jobs
}

let request = StoredRequest(id: "req-1", statusURL: "http://fal/r/req-1/status", responseURL: "http://fal/r/req-1", cancelURL: "http://fal/r/req-1/cancel")
