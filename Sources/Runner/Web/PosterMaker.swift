import Foundation
import JobStore
import KlingCore
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// The `posters` setting: ffmpeg is optional, so by default it is looked for and used only when it is there.
public enum PosterSetting: Sendable, Equatable {
    /// ffmpeg from PATH, when it is installed.
    case auto
    case off
    /// This ffmpeg program.
    case program(String)

    public init?(parsing text: String) {
        switch text.trimmingCharacters(in: .whitespaces).lowercased() {
        case "auto", "true", "yes", "on": self = .auto
        case "off", "false", "no", "none": self = .off
        case let other where other.hasPrefix("/"): self = .program(text.trimmingCharacters(in: .whitespaces))
        default: return nil
        }
    }

    /// The ffmpeg to run, or nil when posters are off or ffmpeg is not installed.
    public var program: String? {
        switch self {
        case .auto: CommandRunner.resolve("ffmpeg")
        case .off: nil
        case .program(let path): CommandRunner.resolve(path)
        }
    }
}

/// Poster frames for the review page and the contact sheet: `<job>.jpg` beside each completed video, made once by
/// ffmpeg on this service's own task, one video at a time, so a job's path never waits for it. Without ffmpeg the
/// pages show the video's first frame (`preload="metadata"`), and nothing here runs.
public struct PosterMaker: Service {
    let store: any JobQueue
    let layout: OutputLayout
    let ffmpeg: String
    let logger: Logger
    /// Rung when a job completes in this process.
    let bell: Doorbell
    /// How often the store's events are read when nothing rings (jobs completed by another process ring nothing).
    let interval: Duration
    /// Whether `run()` first makes every completed job's missing poster (daemon, serve); `run --once` only follows
    /// its own run and reads no history.
    let catchUp: Bool
    let commands = CommandRunner()

    /// Nil when `setting` makes no posters (off, or no ffmpeg installed).
    public init?(
        setting: PosterSetting, store: any JobQueue, layout: OutputLayout, logger: Logger, bell: Doorbell = Doorbell(),
        interval: Duration = .seconds(60), catchUp: Bool = true
    ) {
        guard let ffmpeg = setting.program else {
            if case .program(let path) = setting { logger.warning("posters: \(path) is not an executable program; videos get no poster frame") }
            return nil
        }
        (self.store, self.layout, self.ffmpeg, self.logger, self.bell, self.interval, self.catchUp) = (store, layout, ffmpeg, logger, bell, interval, catchUp)
    }

    public func run() async throws {
        var cursor = (try? await store.lastEventID()) ?? 0
        if catchUp { await drain() }
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                _ = await cancelWhenGracefulShutdown { await bell.wait(until: .now + interval) }
                cursor = await follow(from: cursor)
            }
        } onGracefulShutdown: {}
    }

    /// Makes every completed job's missing poster (at start, and at the end of `run --once`).
    public func drain() async {
        guard let completed = try? await store.jobs(in: [.completed]) else { return }
        await make(completed.filter { Self.needsPoster($0) })
    }

    /// Makes posters for the jobs that completed after event `cursor`; returns the new cursor.
    func follow(from cursor: Int64) async -> Int64 {
        var cursor = cursor
        while !Task.isShuttingDownGracefully, let events = try? await store.stateEvents(after: cursor, limit: 500), let last = events.last {
            cursor = last.id
            var jobs: [JobRecord] = []
            for event in events where event.toState == .completed {
                if let job = try? await store.job(event.jobId), Self.needsPoster(job) { jobs.append(job) }
            }
            await make(jobs)
            if events.count < 500 { break }
        }
        return cursor
    }

    /// Makes each job's poster, then rewrites the contact sheet of each ended batch that gained one.
    func make(_ jobs: [JobRecord]) async {
        var batches = Set<Int64>()
        for job in jobs where !Task.isShuttingDownGracefully {
            if await makePoster(of: job) { batches.insert(job.batchId) }
        }
        for batch in batches.sorted() {
            do {
                try await ContactSheet.writeIfDone(batchID: batch, store: store, layout: layout)
            } catch {
                logger.warning("posters: cannot rewrite the contact sheet of batch \(batch): \(error)")
            }
        }
    }

    /// Whether `job` has a video on disk and no poster beside it.
    static func needsPoster(_ job: JobRecord) -> Bool {
        guard job.state == .completed, let video = job.videoPath else { return false }
        return FileManager.default.fileExists(atPath: video) && !FileManager.default.fileExists(atPath: posterPath(ofVideo: video))
    }

    /// `<job>.jpg` beside `<job>.mp4`: where the review page and the contact sheet look.
    public static func posterPath(ofVideo video: String) -> String {
        (video as NSString).deletingPathExtension + ".jpg"
    }
}
