import Foundation
import KlingCore

extension SpecValidator {
    /// Where a spec's relative image paths start, so that a spec keeps its meaning when the drop folder moves it:
    /// `--base` when given; for a spec in `<jobs>/rejected/` or `<jobs>/accepted/<day>/`, the drop folder `<jobs>`
    /// it was dropped into; anywhere else, the spec's own folder.
    public func imageBase(forSpecAt absolute: String) -> String {
        if let base = options.base { return Self.absolute(base) }
        let folder = Self.parent(of: absolute)
        return Self.dropFolder(holding: folder) ?? folder
    }

    /// The drop folder an archive folder belongs to: `<jobs>` for `<jobs>/rejected` and `<jobs>/accepted/<day>`,
    /// when `<jobs>` has both archives (as every drop folder does); nil for any other folder.
    static func dropFolder(holding folder: String) -> String? {
        let name = lastComponent(of: folder)
        let parent = parent(of: folder)
        let candidate: String
        if name == "rejected" {
            candidate = parent
        } else if lastComponent(of: parent) == "accepted", name.wholeMatch(of: /\d{4}-\d{2}-\d{2}/) != nil {
            candidate = Self.parent(of: parent)
        } else {
            return nil
        }
        var isFolder: ObjCBool = false
        let hasBoth = ["accepted", "rejected"].allSatisfy {
            FileManager.default.fileExists(atPath: candidate + "/" + $0, isDirectory: &isFolder) && isFolder.boolValue
        }
        return hasBoth ? candidate : nil
    }

    /// The folder holding `path`, an absolute, standardized path (`/` for `/` itself), as NSString's
    /// `deletingLastPathComponent` gives it without bridging: every spec of an ingest asks, and bridging showed in profiles.
    static func parent(of path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "" }
        return slash == path.utf8.startIndex ? "/" : String(path[..<slash])
    }

    /// The last component of an absolute, standardized path (`/` for `/` itself).
    static func lastComponent(of path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return path }
        let name = String(path[path.utf8.index(after: slash)...])
        return name.isEmpty ? "/" : name
    }

    /// Every spec the command line names, validated: folders expanded, refused links reported without reading.
    /// Empty when the paths held no spec file at all (a typo in a folder name, say).
    public func validate(paths: [String]) throws -> [SpecReport] {
        let list = try SpecFiles.expand(paths)
        return list.files.map { validate($0) } + list.refused
    }
}

/// What a set of validated specs would run and cost, for `plan`: the valid files' jobs and their totals.
public struct SpecPlan: Sendable {
    public let prices: PriceList
    /// Every job of the valid files, with its file's report.
    public let jobs: [(report: SpecReport, job: JobSpec)]
    /// Files that would not run at all.
    public let invalid: [SpecReport]

    public init(reports: [SpecReport], prices: PriceList) {
        self.prices = prices
        jobs = reports.filter(\.isValid).flatMap { report in report.jobs.map { (report, $0) } }
        invalid = reports.filter { !$0.isValid }
    }

    public var seconds: Int { jobs.reduce(0) { $0 + $1.job.duration } }
    /// The valid files that multiply their jobs, with how.
    public var expansions: [(report: SpecReport, summary: SpecExpansionSummary)] {
        var seen = Set<String>()
        return jobs.compactMap { report, _ in
            guard let summary = report.expansion, seen.insert(report.absolutePath).inserted else { return nil }
            return (report, summary)
        }
    }
    /// The sum of the jobs' own costs, so the total is exactly what the cost column adds up to.
    public var cost: USD { USD(micros: jobs.reduce(0) { $0 + $1.job.estimatedCost(prices).micros }) }
    /// Endpoints of planned jobs that have no price (they are counted at the highest known one).
    public var unpricedEndpoints: [String] { Set(jobs.map(\.job.endpoint)).filter { !prices.price(for: $0).known }.sorted() }
}
