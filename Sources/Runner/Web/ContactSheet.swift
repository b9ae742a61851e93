import Foundation
import JobStore
import KlingCore
import KlingSpec

/// `index.html` beside a finished batch's videos: every job's video, name, prompt, state and cost, with relative
/// links only, so it opens from a file manager (or a copy of the folder) with no server. Written when the batch's
/// last job ends, and again whenever it ends again after a retry.
enum ContactSheet {
    /// Writes the sheet when every job of the batch has ended; returns its path when it did.
    /// `ending`: a job about to be recorded as ended, counted as it will be.
    @discardableResult
    static func writeIfDone(batchID: Int64, store: any JobQueue, layout: OutputLayout, ending: JobRecord? = nil) async throws -> String? {
        let unfinished = try await store.unfinishedCount(inBatch: batchID)
        guard unfinished <= 1, let batch = try await store.batch(batchID) else { return nil }
        let jobs = try await store.jobs(inBatch: batchID).map { ending != nil && $0.id == ending?.id ? ending! : $0 }
        guard !jobs.isEmpty, jobs.allSatisfy({ $0.state.isTerminal }) else { return nil }
        let folder = layout.folder(of: batch)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/index.html"
        try AtomicFile.write(Data(html(batch, jobs: jobs, folder: folder).utf8), to: path, what: "contact sheet")
        return path
    }

    /// The page itself; links are file names in the same folder.
    static func html(_ batch: BatchRecord, jobs: [JobRecord], folder: String) -> String {
        let done = jobs.filter { $0.state == .completed }.count
        let total = jobs.reduce(Int64(0)) { $0 + ($1.state == .cancelled ? 0 : $1.estimatedCostMicros) }
        let cards = jobs.map { card($0, folder: folder) }.joined(separator: "\n")
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; media-src 'self' file:; img-src 'self' file:; style-src 'unsafe-inline'">
            <title>\(HTML.escape(batch.name)) · kling-batch</title>
            <style>
            body { font: 15px/1.45 system-ui, sans-serif; margin: 20px; background: #fafafa; color: #1d1d1f; }
            .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); gap: 14px; }
            figure { margin: 0; background: #fff; border: 1px solid #e3e3e3; border-radius: 8px; padding: 8px; }
            video { width: 100%; border-radius: 6px; background: #000; }
            .none { aspect-ratio: 16 / 9; display: flex; align-items: center; justify-content: center; background: #eee; border-radius: 6px; color: #666; }
            figcaption p { margin: 4px 0; } .prompt { color: #444; font-size: 13px; white-space: pre-wrap; } .failed { color: #a01010; }
            </style></head><body>
            <h1>\(HTML.escape(batch.name))</h1>
            <p>\(done) of \(jobs.count) completed · estimated \(HTML.dollars(total)) · written \(HTML.escape(Date().iso8601))</p>
            <div class="grid">
            \(cards)
            </div></body></html>
            """
    }

    private static func card(_ job: JobRecord, folder: String) -> String {
        let spec = try? JSONDecoder().decode(JobSpec.self, from: Data(job.specJson.utf8))
        let video = job.videoPath.map { ($0 as NSString).lastPathComponent }
        let media: String
        if job.state == .completed, let video {
            let poster = PosterMaker.posterPath(ofVideo: video)
            let posterAttribute = FileManager.default.fileExists(atPath: folder + "/" + poster) ? " poster=\"\(HTML.escape(Self.relative(poster)))\"" : ""
            media = "<video src=\"\(HTML.escape(Self.relative(video)))\" controls preload=\"metadata\"\(posterAttribute)></video>"
        } else {
            media = "<div class=\"none\">\(HTML.escape(job.state.label))</div>"
        }
        let error = job.state == .failed ? (job.lastError.map { "<p class=\"failed\">\(HTML.escape(String($0.prefix(300))))</p>" } ?? "") : ""
        return """
            <figure>\(media)<figcaption><p><strong>\(HTML.escape(job.name))</strong> · <span class="\(job.state.rawValue)">\(HTML.escape(job.state.label))</span> · \(HTML.dollars(job.estimatedCostMicros))</p>
            <p class="prompt">\(HTML.escape(spec?.prompt ?? ""))</p>\(error)</figcaption></figure>
            """
    }

    /// A file name as a relative URL (`./name.mp4`, percent-encoded), so a name with `:` is never read as a scheme.
    static func relative(_ name: String) -> String {
        "./" + (name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/?#;:"))) ?? name)
    }
}
