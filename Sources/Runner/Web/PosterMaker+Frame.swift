import Foundation
import JobStore
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

extension PosterMaker {
    /// The longest one frame may take; a video ffmpeg cannot read fails sooner.
    static let timeout = Duration.seconds(60)

    /// Makes one job's poster: a representative frame of the first second, at most 640 px on its long side, written
    /// to a temp file and renamed, so the poster is either absent or whole. False when none was made (the failure is
    /// logged; the next start tries again).
    func makePoster(of job: JobRecord) async -> Bool {
        guard let video = job.videoPath else { return false }
        let poster = Self.posterPath(ofVideo: video)
        let folder = (poster as NSString).deletingLastPathComponent
        let temporary = folder + "/." + (poster as NSString).lastPathComponent + ".tmp-\(getpid())"
        // Created here, not by ffmpeg: O_NOFOLLOW, so a symlink planted at the temp name is never written through.
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            logger.warning("posters: cannot write \(temporary): \(String(cString: strerror(errno)))", metadata: ["job": "\(job.name)"])
            return false
        }
        close(fd)
        // At a lower priority (nice 10) when `nice` is there: a poster is never more urgent than the runner.
        let words = (CommandRunner.resolve("nice").map { [$0, "-n", "10"] } ?? []) + Self.words(ffmpeg: ffmpeg, video: video, output: temporary)
        // Stopping kills it (the temp file goes, and the next start makes the poster).
        let outcome = await cancelWhenGracefulShutdown { [commands] in await commands.run(words, stdin: [], environment: [:], timeout: Self.timeout) }
        var info = stat()
        let made = outcome.succeeded && stat(temporary, &info) == 0 && info.st_size > 0
        guard made, rename(temporary, poster) == 0 else {
            unlink(temporary)
            let why = made ? String(cString: strerror(errno)) : (outcome.tail.last.map { "\(outcome.summary): \($0)" } ?? outcome.summary)
            logger.warning("posters: no poster for \(video) (\(why)); the video plays without one", metadata: ["job": "\(job.name)"])
            return false
        }
        // A runner killed while making one left its temp file: gone now, as the manifests' are.
        AtomicFile.removeLeftovers(of: poster)
        logger.debug("poster: \(poster)", metadata: ["job": "\(job.name)"])
        return true
    }

    /// ffmpeg's words: paths as `file:` URLs (a name is never read as a protocol or an option), no stdin, errors only, the `thumbnail` filter over the first 24 frames (never past the end of
    /// a short video, unlike a seek), scaled down only, one JPEG frame.
    static func words(ffmpeg: String, video: String, output: String) -> [String] {
        [
            ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", "file:" + video,
            "-vf", "thumbnail=24,scale=w=640:h=640:force_original_aspect_ratio=decrease", "-frames:v", "1", "-q:v", "5",
            "-f", "mjpeg", "-y", "file:" + output,
        ]
    }
}
