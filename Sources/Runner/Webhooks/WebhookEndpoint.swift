import FalClient
import Foundation
import JobStore
import KlingCore
import Logging

/// Takes fal's webhooks: checks the signature, finds the job by its request id and wakes it. A webhook only tells
/// the runner to look now; the outcome is still read from fal's queue API, so a forged or lost webhook can delay a
/// job by at most its polling schedule and can never change what it records.
struct WebhookEndpoint: Sendable {
    let store: any JobQueue
    let inbox: WebhookInbox
    let keys: WebhookKeys
    let logger: Logger

    /// The HTTP answer to a delivery: 200 taken or ignored, 401 refused, 404 unknown request, 503 try again later.
    struct Answer: Sendable, Equatable {
        let status: Int
        let text: String
    }

    /// Checks and takes one delivery; `headers` with lowercased names, `body` as received.
    func receive(headers: [String: String], body: Data, now: Date = Date()) async -> Answer {
        let signed: FalWebhook.Signed
        switch FalWebhook.precheck(headers: headers, now: now) {
        case .failure(let rejection): return refused(rejection, headers: headers)
        case .success(let checked): signed = checked
        }
        let published: [FalWebhook.PublicKey]
        do {
            published = try await keys.current()
        } catch {
            logger.warning("webhook: cannot check its signature now: \(error)")
            return Answer(status: 503, text: "cannot check signatures now; deliver again later\n")
        }
        var verdict = FalWebhook.verify(signed, body: body, keys: published)
        if case .failure(.badSignature) = verdict, let fresh = try? await keys.refreshed() {
            verdict = FalWebhook.verify(signed, body: body, keys: fresh)
        }
        let delivery: FalWebhook.Delivery
        switch verdict {
        case .failure(let rejection): return refused(rejection, headers: headers)
        case .success(let accepted): delivery = accepted
        }
        let job: JobRecord?
        do {
            job = try await store.job(requestID: delivery.requestID)
        } catch {
            logger.warning("webhook for request \(delivery.requestID): the store cannot be read (\(error)); fal will deliver again")
            return Answer(status: 503, text: "the job store cannot be read now; deliver again later\n")
        }
        guard let job else {
            RunnerMetrics.webhook("unknown")
            logger.notice("webhook for request \(delivery.requestID), which no job here has; ignored")
            return Answer(status: 404, text: "no job has request \(delivery.requestID)\n")
        }
        switch inbox.arrive(delivery.requestID) {
        case .duplicate:
            RunnerMetrics.webhook("duplicate")
            logger.debug("webhook for request \(delivery.requestID) again; ignored")
            return Answer(status: 200, text: "already told; ignored\n")
        case .woke, .early:
            RunnerMetrics.webhook("accepted")
            logger.info("webhook: request \(delivery.requestID) ended (\(delivery.status)); looking now", metadata: ["job_id": "\(job.id)"])
            return Answer(status: 200, text: "ok\n")
        }
    }

    /// A 401, logged with the (escaped, shortened) request id the sender claimed.
    private func refused(_ rejection: FalWebhook.Rejection, headers: [String: String]) -> Answer {
        RunnerMetrics.webhook("refused")
        let claimed = headers[FalWebhook.requestIDHeader].map { LogSafe.escape(String($0.prefix(80))) }
        logger.warning("webhook refused: \(rejection)", metadata: claimed.map { ["request": "\($0)"] } ?? [:])
        return Answer(status: 401, text: "refused: \(rejection)\n")
    }
}

extension WebhookEndpoint {
    /// The webhook URL for a log line: scheme, host, port and path; a query (which may carry a token) as `?…`.
    static func shown(_ url: URL) -> String {
        var components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        let hadQuery = components?.query != nil
        components?.query = nil
        components?.fragment = nil
        components?.user = nil
        components?.password = nil
        return (components?.string ?? url.path) + (hadQuery ? "?…" : "")
    }
}
