import FalClient
import Foundation
import JobStore
import Logging

/// A job's request as fal calls need it, and whether this runner may call fal about it at all.
enum RequestHandles {
    /// Whether the job needs the key at another origin than `origin` (an emulator that is gone, say): its request
    /// is there. A download needs no key, so a job in `downloading` is never foreign.
    static func isForeign(_ job: JobRecord, origin: String) -> Bool {
        guard job.state != .downloading, job.state != .queued || job.resume == .result else { return false }
        return job.falOrigin.map { $0 != origin } ?? false
    }

    /// The request's URLs as stored, each on the client's queue origin (a URL elsewhere is rebuilt from the request
    /// id, and the mismatch logged: following it would send the key there); nil before a submit.
    static func handle(of job: JobRecord, client: FalClient, logger: Logger) -> FalRequestHandle? {
        guard let id = job.requestId, let endpoint = FalEndpointID(job.endpoint) else { return nil }
        guard let status = job.statusUrl.flatMap(URL.init(string:)), let response = job.responseUrl.flatMap(URL.init(string:)),
            let cancel = job.cancelUrl.flatMap(URL.init(string:))
        else {
            return FalRequestHandle(requestID: id, endpoint: endpoint, queueBase: client.endpoints.queue)
        }
        let stored = FalRequestHandle(requestID: id, endpoint: endpoint, statusURL: status, responseURL: response, cancelURL: cancel)
        let (handle, replaced) = stored.confined(to: client.endpoints.queue)
        if !replaced.isEmpty {
            logger.warning("stored request URLs are on another origin; using \(client.endpoints.queueOrigin) instead of following them",
                           metadata: ["job": "\(job.id)", "request": "\(id)", "named": "\(replaced.map(\.absoluteString).joined(separator: " "))"])
        }
        return handle
    }
}
