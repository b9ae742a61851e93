import Foundation
import JobStore
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

extension PosterMaker {
    /// The longest one frame may take; a video ffmpeg cannot read fails sooner.
    static let timeout = Duration.seconds(60)

    /// Makes one job's poster: a representative frame of the first second, at most 640 px on its long side. ffmpeg
    /// writes it in a private folder of its own (mode 0700, a fresh name), never in the output folder, where someone
    /// could plant a symlink for it to write through; the bytes are then written beside the video by `AtomicFile`,
    /// so the poster is either absent or whole. False when none was made (logged; the next start tries again).
    func makePoster(of job: JobRecord) async -> Bool {
        guard let video = job.videoPath else { return false }
        let poster = Self.posterPath(ofVideo: video)
        var template = Array((NSTemporaryDirectory() + "/kling-batch-poster-XXXXXX").utf8CString)
        guard let folder = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }).map({ String(cString: $0) }) else {
            logger.warning("posters: cannot make a temporary folder: \(String(cString: strerror(errno)))", metadata: ["job": "\(job.name)"])
            return false
        }
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let frame = folder + "/poster.jpg"
        // At a lower priority (nice 10) when `nice` is there: a poster is never more urgent than the runner.
        let words = (CommandRunner.resolve("nice").map { [$0, "-n", "10"] } ?? []) + Self.words(ffmpeg: ffmpeg, video: video, output: frame)
        // Stopping kills it (the next start makes the poster).
        let outcome = await cancelWhenGracefulShutdown { [commands] in await commands.run(words, stdin: [], environment: [:], timeout: Self.timeout) }
        do {
            guard outcome.succeeded, let bytes = Self.readRegularFile(frame), !bytes.isEmpty else {
                throw PosterFailure(reason: outcome.tail.last.map { "\(outcome.summary): \($0)" } ?? outcome.summary)
            }
            try AtomicFile.write(bytes, to: poster, what: "poster")
        } catch {
            logger.warning("posters: no poster for \(video) (\(error)); the video plays without one", metadata: ["job": "\(job.name)"])
            return false
        }
        logger.debug("poster: \(poster)", metadata: ["job": "\(job.name)"])
        return true
    }

    /// The file's bytes when it is a regular file (not a symlink), else nil.
    static func readRegularFile(_ path: String) -> Data? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return try? handle.readToEnd()
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

/// Why ffmpeg made no frame.
struct PosterFailure: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}
