import Foundation
import Hummingbird
import JobStore
import KlingCore
import KlingSpec

extension ReviewSite {
    /// `/`: every batch, newest first, with its progress and money.
    func batchesPage(_ request: Request) async throws -> String {
        let batches = try await store.batches().reversed() as [BatchRecord]
        let overview = try await store.batchOverview()
        let page = max(1, request.uri.queryParameters.get("page").flatMap { Int($0) } ?? 1)
        let pages = max(1, (batches.count + Self.batchesPerPage - 1) / Self.batchesPerPage)
        let shown = batches.dropFirst((page - 1) * Self.batchesPerPage).prefix(Self.batchesPerPage)
        var rows = ""
        for batch in shown {
            let tally = overview[batch.id] ?? BatchOverview()
            let running = tally.count(.uploading, .submitting, .submitUnknown, .inQueue, .inProgress, .downloading)
            rows += """
                <tr><td><a href="/batches/\(batch.id)">\(HTML.escape(batch.name))</a></td>
                <td>\(tally.count(.completed))/\(tally.jobs) done · \(running) running · \(tally.count(.queued)) queued · \(tally.count(.held)) held · \(tally.count(.failed)) failed\(tally.count(.cancelled) > 0 ? " · \(tally.count(.cancelled)) cancelled" : "")</td>
                <td>\(HTML.dollars(tally.spentMicros)) of \(HTML.dollars(tally.estimatedMicros))</td>
                <td>\(HTML.escape(batch.acceptedAt.iso8601))</td><td class="path">\(HTML.escape(batch.sourcePath))</td></tr>
                """
        }
        let body = batches.isEmpty
            ? "<p>No batches yet. Drop a spec file into the jobs folder, or run <code>kling-batch run FILE</code>.</p>"
            : "<h1>Batches</h1><table><thead><tr><th>batch</th><th>progress</th><th>spent (estimated total)</th><th>accepted</th><th>spec file</th></tr></thead><tbody>\(rows)</tbody></table>"
                + HTML.pager(current: page, pages: pages, query: [:])
        return HTML.page(title: "Batches", body: body, readOnly: !mayAct(request))
    }

    /// `/batches/ID`: the grid of a batch's jobs, filtered by state and searched by name, prompt or meta value.
    func batchPage(_ request: Request, id: Int64) async throws -> String {
        guard let batch = try await store.batch(id) else { throw HTTPError(.notFound) }
        let query = request.uri.queryParameters
        let state = query.get("state").flatMap { JobState(rawValue: String($0)) }
        let search = String(query.get("q") ?? "").trimmingCharacters(in: .whitespaces)
        let page = max(1, query.get("page").flatMap { Int($0) } ?? 1)
        // Only the page's jobs are read: a batch of 10,000 answers as fast as one of 10.
        let (shown, matching) = try await store.jobPage(
            inBatch: id, state: state, search: search.isEmpty ? nil : search, limit: Self.jobsPerPage, offset: (page - 1) * Self.jobsPerPage)
        let all = state == nil && search.isEmpty ? matching : try await store.jobPage(inBatch: id, state: nil, search: nil, limit: 0, offset: 0).total
        let pages = max(1, (matching + Self.jobsPerPage - 1) / Self.jobsPerPage)
        let cards = shown.map(card).joined()
        let canAct = mayAct(request)
        var keep: [String: String] = [:]
        if let state { keep["state"] = state.rawValue }
        if !search.isEmpty { keep["q"] = search }
        let body = """
            <h1>\(HTML.escape(batch.name))</h1>
            <p class="muted">\(all) jobs · accepted \(HTML.escape(batch.acceptedAt.iso8601)) · <span class="path">\(HTML.escape(batch.sourcePath))</span></p>
            \(canAct ? "<form method=\"post\" action=\"/batches/\(batch.id)/rerun\" class=\"action\"><button>rerun this batch</button></form>" : "")
            \(filterForm(state: state, search: search))
            <p class="muted">\(matching) match\(pages > 1 ? ", \(Self.jobsPerPage) a page" : "")</p>
            <div class="grid" id="grid" data-batch="\(batch.id)" data-after="\(try await store.lastEventID())">\(cards)</div>
            \(HTML.pager(current: page, pages: pages, query: keep))
            """
        return HTML.page(title: batch.name, body: body, readOnly: !canAct)
    }

    private func filterForm(state: JobState?, search: String) -> String {
        let options = ([nil] + JobState.allCases.map { $0 as JobState? }).map { option -> String in
            let value = option?.rawValue ?? ""
            return "<option value=\"\(value)\"\(option == state ? " selected" : "")>\(option?.label ?? "every state")</option>"
        }.joined()
        return """
            <form method="get" class="filter"><select name="state">\(options)</select>
            <input type="search" name="q" value="\(HTML.escape(search))" placeholder="name, prompt or meta value">
            <button>filter</button></form>
            """
    }

    /// One job's card: its video when finished, else its state and, for a failure, the reason in one line.
    func card(_ job: JobRecord) -> String {
        let media: String
        if job.state == .completed, job.videoPath != nil {
            let poster = posterPath(of: job) != nil ? " poster=\"/files/poster/\(job.id)\"" : ""
            media = "<video src=\"/files/video/\(job.id)\" preload=\"metadata\" muted loop playsinline controls\(poster)></video>"
        } else {
            media = "<div class=\"placeholder\">\(HTML.escape(job.state.label))</div>"
        }
        let reason = (job.state == .failed || job.state == .held) ? (job.lastError ?? job.heldReason).map { "<p class=\"reason\">\(HTML.escape(Self.firstLine($0)))</p>" } ?? "" : ""
        return """
            <article class="card state-\(job.state.rawValue)" id="job-\(job.id)" data-job="\(job.id)" data-state="\(job.state.rawValue)">
            \(media)<h2><a href="/jobs/\(job.id)">\(HTML.escape(job.name))</a></h2>
            <p><span class="state">\(HTML.escape(job.state.label))</span> · \(HTML.dollars(job.estimatedCostMicros))</p>\(reason)
            </article>
            """
    }

    /// `/jobs/ID/card`: one card, for live updates.
    func cardFragment(_ request: Request, id: Int64) async throws -> String {
        guard let job = try await store.job(id) else { throw HTTPError(.notFound) }
        return card(job)
    }

    static func firstLine(_ text: String) -> String {
        let line = text.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? text
        return line.count > 300 ? String(line.prefix(300)) + "…" : line
    }
}
