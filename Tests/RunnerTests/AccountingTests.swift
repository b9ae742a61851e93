import FalClient
import Foundation
@testable import JobStore
import KlingCore
import KlingSpec
@testable import Runner
import Testing
import TestSupport

@Suite("Accounting: spend reports, prices and submit options in settings, checking the video")
struct AccountingPolicyTests {
    func row(_ id: Int64, job: Int64, batch: String, batchID: Int64 = 1, endpoint: String = PriceList.klingO1Pro, micros: Int64 = 560_000, seconds: Int = 5,
             day: String = "2026-11-30", outcome: JobState?, duplicate: Bool = false) -> SpendRecord {
        SpendRecord(
            id: id, jobId: job, batchId: batchID, batchName: batch, jobName: "j\(job)", attempt: 1, requestId: "r\(id)", endpoint: endpoint, origin: nil,
            micros: micros, seconds: seconds, day: day, at: Date(), kind: duplicate ? .unknown : .accepted, outcome: outcome, possibleDuplicate: duplicate)
    }

    @Test("a report groups ledger rows and splits them by how their requests ended; totals are the sum of the rows")
    func grouping() {
        let rows = [
            row(1, job: 1, batch: "a", outcome: .completed),
            row(2, job: 2, batch: "a", outcome: .failed, duplicate: true),
            row(3, job: 2, batch: "a", outcome: .completed),
            row(4, job: 3, batch: "b", endpoint: "std", micros: 840_000, seconds: 10, day: "2026-12-01", outcome: .cancelled),
            row(5, job: 4, batch: "b", day: "2026-12-01", outcome: nil),
        ]
        let byDay = SpendReport(rows: rows, by: .day)
        #expect(byDay.lines.map(\.key) == ["2026-11-30", "2026-12-01"])
        #expect(byDay.lines[0].jobs == 2 && byDay.lines[0].submissions == 3 && byDay.lines[0].seconds == 15)
        #expect(byDay.lines[0].completed == USD(micros: 1_120_000) && byDay.lines[0].failed == USD(micros: 560_000))
        #expect(byDay.lines[0].possibleDuplicates == 1)
        #expect(byDay.lines[1].cancelled == USD(micros: 840_000) && byDay.lines[1].open == USD(micros: 560_000))
        #expect(byDay.totals.committed == USD(micros: 3_080_000) && byDay.totals.jobs == 4 && byDay.totals.submissions == 5)
        #expect(byDay.totals.committed == byDay.totals.completed + byDay.totals.failed + byDay.totals.cancelled + byDay.totals.open)
        #expect(SpendReport(rows: rows, by: .state).lines.map(\.key) == ["cancelled", "completed", "failed", "open"])
        #expect(SpendReport(rows: rows, by: .endpoint).lines.map(\.key) == [PriceList.klingO1Pro, "std"])
        #expect(SpendReport(rows: [], by: .batch).totals.committed == .zero)
        #expect(byDay.totals.key == "(total)")
        // "a" was purged and its name used again by another batch: two groups, told apart by id.
        let reused = rows + [row(6, job: 9, batch: "a", batchID: 7, outcome: .completed)]
        #expect(SpendReport(rows: reused, by: .batch).lines.map(\.key) == ["a#1", "a#7", "b"])
    }

    @Test("report dates: a bare day is UTC midnight, and as --until it includes the whole day")
    func dates() {
        let start = ReportDate.parse("2026-11-30")
        #expect(start == ISO8601DateFormatter().date(from: "2026-11-30T00:00:00Z"))
        #expect(ReportDate.parse("2026-11-30", endOfDay: true) == ISO8601DateFormatter().date(from: "2026-12-01T00:00:00Z"))
        #expect(ReportDate.parse("2026-11-30T12:30:00Z") == ISO8601DateFormatter().date(from: "2026-11-30T12:30:00Z"))
        #expect(ReportDate.parse("2026-13-40") == nil && ReportDate.parse("yesterday") == nil)
    }

    @Test("prices: in the config file is a mapping; price_per_second is Pro's; flags win; submit options are read and checked")
    func pricesAndOptions() throws {
        let folder = try TemporaryDirectory("prices")
        defer { folder.remove() }
        let file = folder.path + "/config.yaml"
        try """
            price_per_second: 0.1
            prices:
              fal-ai/kling-video/o1/standard/reference-to-video: 0.084
            output_lifetime: 3d
            queue_priority: low
            start_timeout: 10m
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let layers = try ConfigurationLayers.load(flags: [:], explicitFile: file, processEnvironment: [:])
        let settings = try EffectiveSettings(layers, processEnvironment: [:], currentDirectory: "/work")
        #expect(settings.runner.prices.perSecond == [PriceList.klingO1Pro: USD(micros: 100_000), KnownEndpoints.standard: USD(micros: 84_000)])
        #expect(settings.runner.submitOptions == SubmitOptions(startTimeout: .seconds(600), priority: .low, outputLifetime: .seconds(259_200)))
        let flagged = try ConfigurationLayers.load(flags: [.prices: "\(KnownEndpoints.standard)=0.09"], explicitFile: file, processEnvironment: [:])
        #expect(try EffectiveSettings.prices(flagged).perSecond[KnownEndpoints.standard] == USD(micros: 90_000))
        let defaults = try EffectiveSettings(ConfigurationLayers(), processEnvironment: [:])
        #expect(defaults.runner.prices == .published)
        #expect(defaults.runner.submitOptions == SubmitOptions(outputLifetime: .seconds(7 * 86_400)), "a week: time to re-download after a long weekend")
        for (key, value, message) in [
            (SettingKey.queuePriority, "urgent", "must be normal or low"), (.prices, "std=cheap", "'std=cheap'"), (.outputLifetime, "10s", "must be between"),
        ] {
            do {
                _ = try EffectiveSettings(ConfigurationLayers(flags: [key: value]), processEnvironment: [:])
                Issue.record("accepted \(key) \(value)")
            } catch let error as ConfigurationError {
                #expect(error.description.contains(message) && error.description.hasPrefix(key.flag), "\(error)")
            }
        }
    }

    @Test("the submit options a job records are the ones sent again, whatever the settings say by then")
    func recordedOptions() throws {
        let sent = SubmitOptions(startTimeout: .seconds(600), priority: .low, outputLifetime: .seconds(3600))
        #expect(sent.recordJSON == ["output_lifetime_seconds": 3600, "queue_priority": "low", "start_timeout_seconds": 600])
        #expect(SubmitOptions(recordJSON: sent.recordJSON) == sent)
        #expect(SubmitOptions(recordJSON: SubmitOptions().recordJSON) == SubmitOptions())
    }

    /// A file of MP4 boxes: `ftyp`, then `moov` holding `mvhd` (`version` 0 or 1) and a track header of `width`×`height`.
    func mp4(timescale: UInt32, duration: UInt64, version: UInt8 = 0, width: UInt32 = 1280, height: UInt32 = 720) -> [UInt8] {
        func be(_ value: UInt64, _ bytes: Int) -> [UInt8] { (0..<bytes).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) } }
        func box(_ type: String, _ payload: [UInt8]) -> [UInt8] { be(UInt64(payload.count + 8), 4) + Array(type.utf8) + payload }
        let times = version == 1 ? be(0, 16) + be(UInt64(timescale), 4) + be(duration, 8) : be(0, 8) + be(UInt64(timescale), 4) + be(duration, 4)
        let mvhd = box("mvhd", [version, 0, 0, 0] + times + [UInt8](repeating: 0, count: 80))
        let tkhd = box("tkhd", [0, 0, 0, 0] + [UInt8](repeating: 0, count: 72) + be(UInt64(width) << 16, 4) + be(UInt64(height) << 16, 4))
        return box("ftyp", Array("isom".utf8) + be(0, 4)) + box("moov", mvhd + box("trak", tkhd)) + box("mdat", [1, 2, 3])
    }

    @Test("a downloaded file is read for real: its length and size are recorded; a cut file or an impossible length is flagged, never a trap")
    func inspectFiles() throws {
        let folder = try TemporaryDirectory("video-check")
        defer { folder.remove() }
        var job = try JobRecord.fixture(seconds: 5, aspect: .landscape)
        func inspect(_ bytes: [UInt8]) throws -> DownloadedVideo {
            let path = folder.path + "/v.mp4"
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return VideoCheck.inspect(DownloadedVideo(path: path, bytes: Int64(bytes.count), sha256: "x"), of: job)
        }
        let good = try inspect(mp4(timescale: 1000, duration: 5_040))
        #expect(good.durationMillis == 5_040 && good.width == 1280 && good.height == 720 && good.needsReview == nil)
        let long = try inspect(mp4(timescale: 600, duration: 7 * 600, version: 1))
        #expect(long.durationMillis == 7_000 && long.needsReview == "the video plays 7.00 s, 5 s were paid for")
        let cut = try inspect(Array(mp4(timescale: 1000, duration: 5_000).prefix(60)))
        #expect(cut.needsReview?.hasPrefix("the video's length could not be read") == true && cut.durationMillis == nil, "\(cut)")
        // A v1 mvhd whose duration is all ones ("unknown") at timescale 1: 1.8e19 s, which Int(ms) would trap on.
        let unknown = try inspect(mp4(timescale: 1, duration: .max, version: 1))
        #expect(unknown.needsReview?.hasPrefix("the video claims an impossible length") == true && unknown.durationMillis == nil)
        job.durationSeconds = 7
        #expect(try inspect(mp4(timescale: 600, duration: 7 * 600, version: 1)).needsReview == nil)
    }

    @Test("a video of the paid length and shape passes; another length (by more than 0.5 s) or shape needs review")
    func videoCheck() {
        let fine = MP4Summary(durationSeconds: 5.04, width: 1280, height: 720)
        #expect(VideoCheck.review(fine, seconds: 5, aspect: .landscape) == nil)
        #expect(VideoCheck.review(MP4Summary(durationSeconds: 5.5, width: 720, height: 720), seconds: 5, aspect: .square) == nil)
        #expect(VideoCheck.review(MP4Summary(durationSeconds: 7, width: 1280, height: 720), seconds: 5, aspect: .landscape)
                == "the video plays 7.00 s, 5 s were paid for")
        #expect(VideoCheck.review(MP4Summary(durationSeconds: 5, width: 1280, height: 720), seconds: 5, aspect: .portrait)
                == "the video is 1280×720, not 9:16")
        #expect(VideoCheck.review(MP4Summary(durationSeconds: 3, width: 0, height: 0), seconds: 10, aspect: .square)
                == "the video plays 3.00 s, 10 s were paid for and has no video track size (1:1 was asked for)")
    }

    @Test("priority: high jobs are submitted first, then normal, then low, whatever the order in the file; low asks fal for its low queue")
    func priorityOrder() async throws {
        let scenario = try await runScenario(runner: { $0.concurrency = 1 }) { folder in
            let refs = folder.appendingPathComponent("refs")
            try FileManager.default.createDirectory(at: refs, withIntermediateDirectories: true)
            try SpecWriter.png(salt: "priority").write(to: refs.appendingPathComponent("a.png"))
            try """
                defaults: {duration: 3, image_urls: [refs/a.png]}
                jobs:
                  - {name: later, prompt: "@Image1 one", priority: low}
                  - {name: usual, prompt: "@Image1 two"}
                  - {name: first, prompt: "@Image1 three", priority: high}
                  - {name: also-first, prompt: "@Image1 four", priority: high}
                """.write(to: folder.appendingPathComponent("order.yaml"), atomically: true, encoding: .utf8)
        }
        defer { scenario.folder.remove() }
        #expect(scenario.report.succeeded, "\(scenario.report.summary)")
        let names = Dictionary(uniqueKeysWithValues: scenario.report.jobs.compactMap { job in job.requestId.map { ($0, job.name) } })
        #expect(scenario.submitOrder.compactMap { names[$0] } == ["first", "also-first", "usual", "later"])
        #expect(scenario.counters.submitHeaders["X-Fal-Queue-Priority: low"] == 1, "\(scenario.counters.submitHeaders)")
    }
}

extension JobRecord {
    /// A job as the store would hand it to the downloader: `seconds` long, at `aspect`.
    static func fixture(seconds: Int, aspect: AspectRatio) throws -> JobRecord {
        let store = try JobStore.inMemory()
        let spec = JobSpec(name: "shot", prompt: "a tower", duration: seconds, aspectRatio: aspect)
        let batch = NewBatch(
            stem: "check", sourcePath: "/jobs/check.yaml", sourceSHA256: "sha", day: "2026-12-01",
            jobs: [NewJob(name: "shot", specJSON: String(decoding: try JSONEncoder().encode(spec), as: UTF8.self), endpoint: spec.endpoint,
                          durationSeconds: seconds, estimatedCostMicros: 0)])
        guard case .accepted(_, let jobs) = try store.accept(batch) else { throw HarnessError("not accepted") }
        return jobs[0]
    }
}
