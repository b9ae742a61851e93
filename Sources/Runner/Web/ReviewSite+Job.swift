import Foundation
import Hummingbird
import JobStore
import KlingCore
import KlingSpec

extension ReviewSite {
    /// `/jobs/ID`: everything about one job: prompt, inputs, video, events, attempts, fal's logs, cost, actions.
    func jobPage(_ request: Request, id: Int64) async throws -> String {
        guard let job = try await store.job(id), let batch = try await store.batch(job.batchId) else { throw HTTPError(.notFound) }
        let spec = try? JSONDecoder().decode(JobSpec.self, from: Data(job.specJson.utf8))
        let events = try await store.events(of: id)
        let attempts = try await store.attempts(of: id)
        let canAct = mayAct(request)
        var body = """
            <p><a href="/batches/\(batch.id)">\(HTML.escape(batch.name))</a></p>
            <h1>\(HTML.escape(job.name))</h1>
            <div class="job" id="job-\(job.id)" data-job="\(job.id)" data-state="\(job.state.rawValue)" data-after="\(try await store.lastEventID())">
            <p><span class="state">\(HTML.escape(job.state.label))</span> · estimated \(HTML.dollars(job.estimatedCostMicros))\(job.requestId.map { " · request <code>\(HTML.escape($0))</code>" } ?? "")</p>
            """
        if let error = job.lastError, job.state == .failed || job.state == .held { body += "<p class=\"reason\">\(HTML.escape(error))</p>" }
        if job.state == .completed, job.videoPath != nil {
            body += "<video src=\"/files/video/\(job.id)\" preload=\"metadata\" controls playsinline></video>"
            body += "<p><a href=\"/files/video/\(job.id)\">MP4</a> · <a href=\"/files/manifest/\(job.id)\">manifest</a></p>"
        } else if job.manifestPath != nil {
            body += "<p><a href=\"/files/manifest/\(job.id)\">manifest</a></p>"
        }
        body += actionButtons(job, canAct: canAct) + "</div>"
        body += "<h2>Prompt</h2><p class=\"prompt\">\(HTML.escape(spec?.prompt ?? "?"))</p>"
        body += inputs(job, spec: spec)
        if let meta = spec?.meta, !meta.isEmpty {
            body += "<h2>Meta</h2><dl>" + meta.sorted { $0.key < $1.key }.map { "<dt>\(HTML.escape($0.key))</dt><dd>\(HTML.escape($0.value.stringValue ?? $0.value.canonicalString()))</dd>" }.joined() + "</dl>"
        }
        body += attemptTable(attempts) + eventList(events)
        return HTML.page(title: job.name, body: body, readOnly: !canAct)
    }

    /// Cancel while it can be, retry once it failed or was cancelled; POST forms, shown only with the token.
    private func actionButtons(_ job: JobRecord, canAct: Bool) -> String {
        guard canAct else { return "" }
        var buttons = ""
        if !job.state.isTerminal { buttons += "<form method=\"post\" action=\"/jobs/\(job.id)/cancel\" class=\"action\"><button id=\"cancel\">cancel</button></form>" }
        if job.state == .failed || job.state == .cancelled { buttons += "<form method=\"post\" action=\"/jobs/\(job.id)/retry\" class=\"action\"><button id=\"retry\">retry</button></form>" }
        return buttons
    }

    /// Input images: local files as thumbnails served from their known path, remote ones as links.
    private func inputs(_ job: JobRecord, spec: JobSpec?) -> String {
        guard let images = spec?.allImages, !images.isEmpty else { return "" }
        let items = images.enumerated().map { index, image -> String in
            switch image {
            case .local(let local): return "<a href=\"/files/input/\(job.id)/\(index)\"><img src=\"/files/input/\(job.id)/\(index)\" alt=\"\(HTML.escape(local.written))\"></a>"
            case .remote(let url): return "<a href=\"\(HTML.escape(url))\" rel=\"noreferrer\">\(HTML.escape(url))</a>"
            case .dataURI: return "<span class=\"muted\">(an inline data: image)</span>"
            }
        }
        return "<h2>Inputs</h2><div class=\"inputs\">" + items.joined() + "</div>"
    }

    private func attemptTable(_ attempts: [AttemptRecord]) -> String {
        guard !attempts.isEmpty else { return "" }
        let rows = attempts.map { attempt in
            "<tr><td>#\(attempt.number)</td><td>\(HTML.escape(attempt.startedAt.iso8601))</td><td>\(HTML.escape(attempt.outcome.rawValue))</td><td>\(HTML.escape(attempt.requestId ?? ""))</td><td>\(HTML.escape(attempt.attemptedBy ?? ""))</td><td>\(HTML.escape([attempt.errorReason, attempt.errorMessage].compactMap { $0 }.joined(separator: ": ")))</td></tr>"
        }.joined()
        return "<h2>Attempts</h2><table><thead><tr><th></th><th>started</th><th>outcome</th><th>request</th><th>runner</th><th>error</th></tr></thead><tbody>\(rows)</tbody></table>"
    }

    /// State changes, errors, notes and fal's log lines, oldest first.
    private func eventList(_ events: [JobEvent]) -> String {
        guard !events.isEmpty else { return "" }
        let items = events.map { event in
            "<li class=\"event-\(event.kind.rawValue)\"><time>\(HTML.escape(event.at.iso8601Milliseconds))</time> \(HTML.escape(event.message))</li>"
        }.joined()
        return "<h2>Events and fal's logs</h2><ol class=\"events\">\(items)</ol>"
    }
}
