import Foundation
import KlingCore

/// The URLs of one queued request: what submit returned, kept so later calls use fal's own URLs.
public struct FalRequestHandle: Sendable, Codable, Hashable {
    public var requestID: String
    public var endpoint: FalEndpointID
    public var statusURL: URL
    public var responseURL: URL
    public var cancelURL: URL

    public init(requestID: String, endpoint: FalEndpointID, statusURL: URL, responseURL: URL, cancelURL: URL) {
        self.requestID = requestID
        self.endpoint = endpoint
        self.statusURL = statusURL
        self.responseURL = responseURL
        self.cancelURL = cancelURL
    }

    /// Builds the URLs from the id, for a request found again through the listing (which returns no URLs).
    /// They use `owner/alias` only, never the subpath, as fal's queue does.
    public init(requestID: String, endpoint: FalEndpointID, queueBase: URL) {
        let base = queueBase.appendingPathComponent(endpoint.appPath).appendingPathComponent("requests")
            .appendingPathComponent(requestID)
        self.init(
            requestID: requestID, endpoint: endpoint,
            statusURL: base.appendingPathComponent("status"),
            responseURL: base,
            cancelURL: base.appendingPathComponent("cancel")
        )
    }

    /// The handle with every URL on `queueBase`'s origin: a URL that an answer (or an old store) put on another
    /// origin is rebuilt from the request id instead of followed, since following it would send the key there.
    /// Returns the handle and the URLs that were replaced, so the caller can log the mismatch.
    public func confined(to queueBase: URL) -> (handle: FalRequestHandle, replaced: [URL]) {
        let origin = FalOrigin.of(queueBase)
        let built = FalRequestHandle(requestID: requestID, endpoint: endpoint, queueBase: queueBase)
        var handle = self
        var replaced: [URL] = []
        for (path, fallback) in [(\FalRequestHandle.statusURL, built.statusURL), (\.responseURL, built.responseURL), (\.cancelURL, built.cancelURL)]
        where FalOrigin.of(self[keyPath: path]) != origin {
            replaced.append(self[keyPath: path])
            handle[keyPath: path] = fallback
        }
        return (handle, replaced)
    }
}

/// Optional submit settings, each mapped to fal's own header or query parameter.
public struct SubmitOptions: Sendable, Hashable {
    /// `?fal_webhook=`: fal POSTs the outcome there.
    public var webhookURL: URL?
    /// `X-Fal-Request-Timeout`: seconds fal may wait before processing must start.
    public var startTimeout: Duration?
    /// `X-Fal-Queue-Priority`.
    public var priority: Priority?
    /// `X-Fal-Object-Lifecycle-Preference`: how long fal keeps the output files.
    public var outputLifetime: Duration?

    public enum Priority: String, Sendable, Hashable, Codable { case normal, low }

    public init(webhookURL: URL? = nil, startTimeout: Duration? = nil, priority: Priority? = nil, outputLifetime: Duration? = nil) {
        self.webhookURL = webhookURL
        self.startTimeout = startTimeout
        self.priority = priority
        self.outputLifetime = outputLifetime
    }
}

/// fal's answer to a submit.
public struct SubmitReceipt: Sendable, Hashable {
    public var handle: FalRequestHandle
    public var queuePosition: Int?
}

/// Where a request is in fal's queue.
public enum QueueState: Sendable, Hashable {
    case inQueue(position: Int?)
    case inProgress
    /// Finished: the result call says whether it succeeded. `error` is set when fal reports a failure.
    case completed(error: String?, errorType: String?)
}

/// One line of a request's log as fal reports it.
public struct FalLogLine: Sendable, Hashable, Codable {
    public var message: String
    public var level: String?
    public var timestamp: String?

    public init(message: String, level: String? = nil, timestamp: String? = nil) {
        self.message = message
        self.level = level
        self.timestamp = timestamp
    }
}

/// A status answer: the state plus whatever logs and metrics fal sent with it.
public struct RequestStatus: Sendable, Hashable {
    public var state: QueueState
    public var logs: [FalLogLine]
    public var metrics: JSONValue?
}

/// The model's output: the generated video's URL and what fal says about the file.
public struct VideoOutput: Sendable, Hashable, Codable {
    public var url: URL
    public var contentType: String?
    public var fileName: String?
    public var fileSize: Int64?

    public init(url: URL, contentType: String? = nil, fileName: String? = nil, fileSize: Int64? = nil) {
        self.url = url
        self.contentType = contentType
        self.fileName = fileName
        self.fileSize = fileSize
    }

    /// Reads `{video: {url, content_type, file_name, file_size}}`; nil when the output has no usable video URL.
    public init?(result: JSONValue) {
        guard let video = result["video"], let text = video["url"]?.stringValue, let url = URL(string: text),
            url.scheme != nil
        else { return nil }
        self.init(
            url: url,
            contentType: video["content_type"]?.stringValue,
            fileName: video["file_name"]?.stringValue,
            fileSize: video["file_size"]?.intValue
        )
    }
}

/// The answer to a cancel.
public enum CancelOutcome: String, Sendable, Hashable {
    /// 202 CANCELLATION_REQUESTED: fal will stop the request if it can.
    case requested
    /// 400 ALREADY_COMPLETED: too late; the result exists.
    case alreadyCompleted
}

/// One request from the platform API's listing, with its payloads when `expand=payloads` was asked.
public struct ListedRequest: Sendable, Hashable {
    public var requestID: String
    public var endpointID: String
    public var sentAt: Date?
    public var startedAt: Date?
    public var endedAt: Date?
    public var statusCode: Int?
    public var input: JSONValue?
    public var output: JSONValue?
}

/// One page of the request listing.
public struct RequestListPage: Sendable, Hashable {
    public var items: [ListedRequest]
    public var nextCursor: String?
    public var hasMore: Bool
}

/// What a finished download produced.
public struct DownloadReport: Sendable, Hashable {
    public var bytes: Int64
    /// Lower-case hex SHA-256 of the whole file.
    public var sha256: String
    /// How many times a cut transfer was resumed with a Range request.
    public var resumes: Int

    public init(bytes: Int64, sha256: String, resumes: Int) {
        self.bytes = bytes
        self.sha256 = sha256
        self.resumes = resumes
    }
}
