import ArgumentParser
import Foundation
import JobStore
import KlingCore

/// Turns what an operator types into jobs: `batch/job`, an unambiguous prefix of it, a job name that is
/// unique, or a request id. Errors say what does exist, so a typo is one look away from fixed.
struct JobResolver {
    let jobs: [JobRecord]
    let batches: [Int64: BatchRecord]
    /// Request ids of every attempt, so an old id from a log line still finds its job.
    let attemptRequests: [String: Int64]

    init(store: JobStore) throws {
        jobs = try store.allJobs()
        batches = Dictionary(uniqueKeysWithValues: try store.batches().map { ($0.id, $0) })
        attemptRequests = try store.attemptRequestIDs()
    }

    func name(_ job: JobRecord) -> String { "\(batches[job.batchId]?.name ?? "?")/\(job.name)" }

    func batch(named name: String) throws -> BatchRecord {
        if let batch = batches.values.first(where: { $0.name == name }) { return batch }
        let known = batches.values.sorted { $0.id > $1.id }.prefix(10).map(\.name)
        throw ValidationError("no batch named '\(name)'" + (known.isEmpty ? "; the store has no batches yet" : "; recent batches: \(known.joined(separator: ", "))"))
    }

    /// The one job `text` names.
    func resolve(_ text: String) throws -> JobRecord {
        if let job = jobs.first(where: { name($0) == text || $0.requestId == text }) { return job }
        if let id = attemptRequests[text], let job = jobs.first(where: { $0.id == id }) { return job }
        var matches = jobs.filter { name($0).hasPrefix(text) }
        if matches.isEmpty { matches = jobs.filter { $0.name == text || $0.name.hasPrefix(text) || ($0.requestId?.hasPrefix(text) ?? false) } }
        if matches.count == 1 { return matches[0] }
        if matches.count > 1 {
            let shown = matches.prefix(8).map(name).joined(separator: ", ")
            throw ValidationError("'\(text)' matches \(matches.count) jobs (\(shown)\(matches.count > 8 ? ", …" : "")); give more of the name, as batch/job")
        }
        let batchNames = Set(jobs.compactMap { batches[$0.batchId]?.name })
        let hint: String
        if let batchName = text.split(separator: "/").first.map(String.init), batchNames.contains(batchName) {
            let inBatch = jobs.filter { batches[$0.batchId]?.name == batchName }.prefix(10).map(name)
            hint = "batch \(batchName) has: \(inBatch.joined(separator: ", "))"
        } else if jobs.isEmpty {
            hint = "the store has no jobs yet"
        } else {
            hint = "recent jobs: " + jobs.suffix(8).map(name).joined(separator: ", ") + " (see `kling-batch list`)"
        }
        throw ValidationError("no job '\(text)'; \(hint)")
    }
}

extension JobRecord {
    /// The `meta` tags its spec gave (`list --json`, `list --meta`, `show`); empty when none.
    var specMeta: [String: JSONValue] {
        (try? JSONValue.parse(Data(specJson.utf8)))?["meta"]?.objectValue ?? [:]
    }
}
