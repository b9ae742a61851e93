/// Why a store operation did not happen.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The job was not in the expected state: another component or process moved it first (a cancel, say).
    case stale(jobID: Int64, expected: [JobState], actual: JobState?)
    /// A move the state machine does not allow: a programming error, refused rather than written.
    case illegalTransition(from: JobState, to: JobState)
    /// The database was written by a newer kling-batch.
    case newerSchema(path: String)
    case noSuchJob(Int64)

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
        }
    }
}
