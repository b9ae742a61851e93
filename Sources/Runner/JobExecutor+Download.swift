import FalClient
import Foundation
import JobStore
import KlingCore
import SystemPackage

extension JobExecutor {
    /// downloading: streams the video into the output tree, then writes the manifest (→ completed).
    /// The video is written first and the manifest last, each atomically: a manifest on disk means a complete job.
    func download(_ job: JobRecord) async throws -> JobRecord? {
        guard let batch = try store.batch(job.batchId), let source = job.videoUrl.flatMap(URL.init(string:)) else {
            return try fail(job, StoredError(reason: "no_video", message: "nothing to download: the job has no video URL"))
        }
        let videoPath = environment.layout.videoPath(of: job, in: batch)
        try FileManager.default.createDirectory(atPath: (videoPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var tries = 0
        while !Task.isCancelled {
            tries += 1
            do {
                let report: DownloadReport
                if let existing = Self.alreadyDownloaded(videoPath, expectedBytes: job.videoExpectedBytes) {
                    report = existing
                } else {
                    report = try await environment.downloads.withPermit {
                        try await environment.client.download(from: source, to: FilePath(videoPath), expectedBytes: job.videoExpectedBytes)
                    }
                }
                guard Self.looksLikeMP4(videoPath) else {
                    try? FileManager.default.removeItem(atPath: videoPath)
                    throw FalError(kind: .malformedResponse("the downloaded file is not an MP4 video"), operation: .download, url: source.absoluteString)
                }
                environment.crash.pass(.beforeManifest)
                let manifestPath = try environment.writeManifest(job.id, video: (videoPath, report.bytes, report.sha256), finalState: .completed) ?? ""
                let done = try store.recordDownloaded(job.id, videoPath: videoPath, bytes: report.bytes, sha256: report.sha256, manifestPath: manifestPath)
                RunnerMetrics.downloaded(bytes: report.bytes)
                logger.info("completed: \(videoPath) (\(report.bytes) bytes\(report.resumes > 0 ? ", resumed \(report.resumes)×" : ""))", metadata: metadata(done))
                return done
            } catch let error as FalError {
                if error.kind == .notFound || tries >= configuration.maxDownloadTries {
                    var stored = environment.stored(error)
                    if error.kind == .notFound { stored.message = "the result video is gone (it expired before it was downloaded): \(source.absoluteString)" }
                    return try fail(job, stored)
                }
                logger.warning("download failed (try \(tries) of \(configuration.maxDownloadTries)): \(error)", metadata: metadata(job))
                guard await pause(configuration.retry.backoff(step: tries, cap: .seconds(120))) else { break }
            }
        }
        throw CancellationError()
    }

    /// A complete video left by a run that stopped before its manifest: no need to fetch it again.
    static func alreadyDownloaded(_ path: String, expectedBytes: Int64?) -> DownloadReport? {
        guard let expectedBytes, let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            (attributes[.size] as? NSNumber)?.int64Value == expectedBytes, looksLikeMP4(path),
            let sha = sha256Hex(fileAt: path)
        else { return nil }
        return DownloadReport(bytes: expectedBytes, sha256: sha, resumes: 0)
    }

    /// An MP4 starts with a box whose type (bytes 4–7) is `ftyp`.
    static func looksLikeMP4(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 8)) ?? Data()
        return head.count == 8 && head[head.startIndex + 4..<head.startIndex + 8] == Data("ftyp".utf8)
    }
}
