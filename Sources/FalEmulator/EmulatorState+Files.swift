import Foundation
import KlingCore

extension EmulatorState {
    /// Starts an upload: remembers the name and type under a fresh token.
    func initiateUpload(fileName: String, contentType: String) -> String {
        tallies.uploadInitiations += 1
        let token = UUID().uuidString.lowercased()
        pendingUploads[token] = PendingUpload(fileName: fileName, contentType: contentType)
        return token
    }

    /// Stores the bytes PUT to an upload URL; false when the token is unknown.
    func completeUpload(token: String, bytes: Data) -> Bool {
        guard let pending = pendingUploads.removeValue(forKey: token) ?? uploadedFiles[token].map({
            PendingUpload(fileName: $0.fileName, contentType: $0.contentType)
        }) else { return false }
        tallies.uploadPuts += 1
        tallies.uploadBytes += bytes.count
        uploadedFiles[token] = StoredFile(fileName: pending.fileName, contentType: pending.contentType, bytes: bytes)
        return true
    }

    func uploadedFile(token: String) -> StoredFile? {
        tallies.uploadedFileFetches += 1
        return uploadedFiles[token]
    }

    /// Whether the model could fetch an image URL: the emulator's own uploads exist, `data:` URIs must decode,
    /// loopback and `.invalid` hosts are unreachable, and other public URLs are presumed reachable.
    func canFetch(_ text: String) -> Bool {
        if text.hasPrefix("data:") {
            guard let comma = text.firstIndex(of: ","), text[..<comma].hasSuffix(";base64"),
                text[..<comma].dropFirst(5).hasPrefix("image/"),
                let data = Data(base64Encoded: String(text[text.index(after: comma)...])), !data.isEmpty
            else { return false }
            return true
        }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http",
            let host = url.host?.lowercased(), !host.isEmpty
        else { return false }
        if host.hasSuffix(".invalid") { return false }
        if ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host) {
            let parts = url.path.split(separator: "/")
            guard parts.count >= 3, parts[0] == "files", parts[1] == "uploads", url.port == baseURL.port else { return false }
            return uploadedFiles[String(parts[2])] != nil
        }
        return true
    }

    /// Where a result video can be fetched, or why it cannot.
    enum VideoLookup {
        case video(VideoLayout)
        case notFound
        case expired
    }

    func resultVideo(requestID: String, now: Date) -> VideoLookup {
        advance(to: now)
        guard let request = requests[requestID], request.isFinished, request.outcome == .success else { return .notFound }
        if let lifetime = configuration.resultLifetimeSeconds, let ended = request.endedAt,
            now.timeIntervalSince(ended) > lifetime
        {
            return .expired
        }
        return .video(VideoLayout(
            aspectRatio: request.aspectRatio, durationSeconds: request.videoSeconds, requestID: request.id,
            requestedBytes: request.videoBytes))
    }

    func countDownload(bytes: Int, ranged: Bool) {
        tallies.videoDownloads += 1
        tallies.videoBytesServed += bytes
        if ranged { tallies.rangeRequests += 1 }
    }

    func countResultFetch() { tallies.resultFetches += 1 }
    func countStatusStream() { tallies.statusStreams += 1 }
    /// A stream's answer began (`opened`) or ended, whoever ended it.
    func noteStreamOpen(_ opened: Bool) { tallies.statusStreamsOpen += opened ? 1 : -1 }
    func countLingerComment() { tallies.streamLingerComments += 1 }
    func countSubmitCall() { tallies.submitCalls += 1 }
    /// Keeps a submit's options for tests, and counts them by name and value (`EmulatorCounters.submitHeaders`; the
    /// webhook URL by name only, as it may carry a token).
    func noteSubmitOptions(_ options: [String: String]) {
        lastSubmitOptions = options
        for (name, value) in options {
            tallies.submitHeaders[name == "fal_webhook" ? name : "\(name): \(value)", default: 0] += 1
        }
    }

    /// The platform API's listing of `key`'s requests to an endpoint, newest first.
    func listRequests(_ query: ListingQuery, key: String, now: Date) -> JSONValue {
        tallies.listingCalls += 1
        advance(to: now)
        let matching = submissionOrder.reversed().compactMap { requests[$0] }.filter { request in
            guard request.key == key, request.endpoint == query.endpointID else { return false }
            guard request.isFinished || configuration.listingShowsUnfinished else { return false }
            if let start = query.start, request.submittedAt < start { return false }
            if let end = query.end, request.submittedAt > end { return false }
            if let id = query.requestID, request.id != id { return false }
            if let status = query.status {
                let code = request.listingStatusCode ?? 0
                switch status {
                case "success": if !(200..<300).contains(code) { return false }
                case "user_error": if !(400..<500).contains(code) { return false }
                case "error": if code < 500 { return false }
                default: return false
                }
            }
            return true
        }
        let offset = min(query.cursor ?? 0, matching.count)
        let page = matching[offset..<min(offset + query.limit, matching.count)]
        let items: [JSONValue] = page.map { request in
            var item: [String: JSONValue] = [
                "request_id": .string(request.id),
                "endpoint_id": .string(request.endpoint),
                "sent_at": .string(FalTime.format(request.submittedAt)),
                "started_at": request.startedAt.map { .string(FalTime.format($0)) } ?? .null,
                "ended_at": request.endedAt.map { .string(FalTime.format($0)) } ?? .null,
                "status_code": request.listingStatusCode.map { .int(Int64($0)) } ?? .null,
                "duration": request.endedAt.flatMap { end in request.startedAt.map { .double(end.timeIntervalSince($0)) } } ?? .null,
            ]
            if query.expandPayloads {
                item["json_input"] = request.input
                item["json_output"] = request.outcome == .success ? resultBody(for: request) : .null
            }
            return .object(item)
        }
        let nextOffset = offset + page.count
        let more = nextOffset < matching.count
        return ["items": .array(items), "next_cursor": more ? .string(String(nextOffset)) : .null, "has_more": .bool(more)]
    }

    /// The model output of a successful request.
    func resultBody(for request: EmulatedRequest) -> JSONValue {
        let layout = VideoLayout(
            aspectRatio: request.aspectRatio, durationSeconds: request.videoSeconds, requestID: request.id,
            requestedBytes: request.videoBytes)
        let url = baseURL.appendingPathComponent("files/results/\(request.id)/output.mp4")
        return [
            "video": [
                "url": .string(url.absoluteString), "content_type": "video/mp4", "file_name": "output.mp4",
                "file_size": .int(Int64(layout.totalBytes)),
            ]
        ]
    }
}

/// The listing's query parameters, parsed.
struct ListingQuery {
    var endpointID: String
    var start: Date?
    var end: Date?
    var status: String?
    var requestID: String?
    var limit: Int
    var cursor: Int?
    var expandPayloads: Bool
}
