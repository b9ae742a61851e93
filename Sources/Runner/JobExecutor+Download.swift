import FalClient
import Foundation
import JobStore
import KlingCore
import SystemPackage

extension JobExecutor {
    /// downloading: streams the video into the output tree, then writes the manifest (→ completed).
    /// The video is written first and the manifest last, each atomically: a manifest on disk means a complete job.
    ///
    /// A disk that cannot take the video or the manifest (full, read-only, a quota, an I/O error) never fails the
    /// job and spends none of its tries: the job waits here, with submission paused (new jobs would only make more
    /// videos that cannot land), and goes on by itself once a write works again.
    func download(_ job: JobRecord) async throws -> JobRecord? {
        guard let batch = try await store.batch(job.batchId), let source = job.videoUrl.flatMap(URL.init(string:)) else {
            return try await fail(job, StoredError(reason: "no_video", message: "nothing to download: the job has no video URL"), retryBy: .paidResubmit)
        }
        let videoPath = environment.layout.videoPath(of: job, in: batch)
        var tries = 0
        var waited = false
        while !Task.isCancelled {
            do {
                let done = try await fetchAndRecord(job, from: source, to: videoPath)
                if waited { await environment.clearLocal(.output) }
                return done
            } catch let error as LocalWriteError where error.isWaitable {
                waited = true
                await waitForOutput(job, error)
            } catch let full as OutputFull {
                waited = true
                await waitForOutput(job, full.error, needs: full.bytes)
            } catch let error as FalError {
                tries += 1
                if error.kind == .notFound || tries >= configuration.maxDownloadTries {
                    var stored = environment.stored(error)
                    if error.kind == .notFound { stored.message = "the result video is gone (it expired before it was downloaded): \(source.absoluteString)" }
                    return try await fail(job, stored, retryBy: error.kind == .notFound ? .paidResubmit : .download)
                }
                logger.warning("download failed (try \(tries) of \(configuration.maxDownloadTries)): \(error)", metadata: metadata(job))
                guard await pause(configuration.retry.backoff(step: tries, cap: .seconds(120))) else { break }
            }
        }
        throw CancellationError()
    }

    /// One try: the video (unless a complete one is already there), its manifest, then the move to completed.
    private func fetchAndRecord(_ job: JobRecord, from source: URL, to videoPath: String) async throws -> JobRecord {
        try LocalWriteError.makeFolders((videoPath as NSString).deletingLastPathComponent)
        let report: DownloadReport
        if let existing = Self.alreadyDownloaded(videoPath, expectedBytes: job.videoExpectedBytes) {
            report = existing
        } else {
            report = try await environment.downloads.withPermit {
                let reservation = try job.videoExpectedBytes.map { expected in
                    try environment.reserveOutput(max(0, expected - Self.partialBytes(videoPath)), for: videoPath)
                }
                defer { withExtendedLifetime(reservation) {} }
                return try await environment.client.download(from: source, to: FilePath(videoPath), expectedBytes: job.videoExpectedBytes)
            }
        }
        guard Self.looksLikeMP4(videoPath) else {
            try? FileManager.default.removeItem(atPath: videoPath)
            throw FalError(kind: .malformedResponse("the downloaded file is not an MP4 video"), operation: .download, url: source.absoluteString)
        }
        environment.crash.pass(.beforeManifest)
        let video = VideoCheck.inspect(DownloadedVideo(path: videoPath, bytes: report.bytes, sha256: report.sha256), of: job)
        if let review = video.needsReview {
            logger.warning("needs review: \(review); it is kept and not resubmitted (that would pay again)", metadata: metadata(job))
        }
        let store = self.store
        let hook = HookCommand.resolve(for: try? await store.batch(job.batchId), configuration: configuration)
        // Manifest, then store: a manifest failure is a LocalWriteError, waited out by `download` like the video's.
        let done = try await environment.manifests.finish(job, .completed(video), prices: configuration.prices) { path in
            try await durably(job, holding: "a completed video") { try await store.recordDownloaded(job.id, video: video, manifestPath: path, hook: hook) }
        }
        if hook != nil { environment.hookBell.ring() }
        environment.completionBell.ring()
        RunnerMetrics.downloaded(bytes: report.bytes)
        logger.info("completed: \(videoPath) (\(report.bytes) bytes\(report.resumes > 0 ? ", resumed \(report.resumes)×" : ""))", metadata: metadata(done))
        return done
    }

    /// Pauses submission, shows why on the job, and waits until the output can be written or the recheck is due.
    private func waitForOutput(_ job: JobRecord, _ error: LocalWriteError, needs bytes: Int64 = 0) async {
        await environment.pauseOutput(error, "\(error) (videos wait for space; no new job is submitted)", needs: bytes, metadata: metadata(job))
        try? await store.noteWaiting(job.id, in: .downloading, reason: "waiting to write the video: \(error)")
        _ = await environment.waitForLocal(.output)
    }

    /// A complete video left by a run that stopped before its manifest: no need to fetch it again.
    static func alreadyDownloaded(_ path: String, expectedBytes: Int64?) -> DownloadReport? {
        guard let expectedBytes, let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            (attributes[.size] as? NSNumber)?.int64Value == expectedBytes, looksLikeMP4(path),
            let sha = sha256Hex(fileAt: path)
        else { return nil }
        return DownloadReport(bytes: expectedBytes, sha256: sha, resumes: 0)
    }

    /// Bytes of an earlier try already in the hidden partial file.
    static func partialBytes(_ videoPath: String) -> Int64 {
        var info = stat()
        return stat(FalClient.partPath(for: FilePath(videoPath)).string, &info) == 0 ? Int64(info.st_size) : 0
    }

    /// An MP4 starts with a box whose type (bytes 4–7) is `ftyp`.
    static func looksLikeMP4(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 8)) ?? Data()
        return head.count == 8 && head[head.startIndex + 4..<head.startIndex + 8] == Data("ftyp".utf8)
    }
}
