import Foundation
import KlingCore

extension SpecValidator {
    /// Every spec the command line names, validated: folders expanded, refused links reported without reading.
    /// Empty when the paths held no spec file at all (a typo in a folder name, say).
    public func validate(paths: [String]) throws -> [SpecReport] {
        let list = try SpecFiles.expand(paths)
        return list.files.map { validate($0) } + list.refused
    }
}

/// What a set of validated specs would run and cost, for `plan`: the valid files' jobs and their totals.
public struct SpecPlan: Sendable {
    public let rate: USD
    /// Every job of the valid files, with its file's report.
    public let jobs: [(report: SpecReport, job: JobSpec)]
    /// Files that would not run at all.
    public let invalid: [SpecReport]

    public init(reports: [SpecReport], rate: USD) {
        self.rate = rate
        jobs = reports.filter(\.isValid).flatMap { report in report.jobs.map { (report, $0) } }
        invalid = reports.filter { !$0.isValid }
    }

    public var seconds: Int { jobs.reduce(0) { $0 + $1.job.duration } }
    public var cost: USD { rate * seconds }
}
