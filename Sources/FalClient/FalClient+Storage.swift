import Foundation
import KlingCore
import NIOHTTP1

extension FalClient {
    /// Uploads bytes to fal storage (initiate, then PUT) and returns the file URL to pass to the model.
    ///
    /// The PUT goes to a pre-signed URL and carries no key: the signature is the authorisation, and the
    /// URL's host is not necessarily fal's.
    public func upload(_ data: Data, fileName: String, contentType: String) async throws -> URL {
        var components = URLComponents(
            url: endpoints.storage.appendingPathComponent("storage/upload/initiate"), resolvingAgainstBaseURL: false)!
        components.queryItems = [URLQueryItem(name: "storage_type", value: "gcs")]
        let initiateURL = components.url!
        let json = try await sendJSON(
            .POST, initiateURL, body: ["file_name": .string(fileName), "content_type": .string(contentType)],
            operation: .upload, timeout: timeouts.upload)
        guard let uploadURL = json["upload_url"]?.stringValue.flatMap(URL.init(string:)),
            let fileURL = json["file_url"]?.stringValue.flatMap(URL.init(string:))
        else {
            throw FalError(
                kind: .malformedResponse("upload initiation answer lacks upload_url or file_url"), operation: .upload,
                url: initiateURL.absoluteString, httpStatus: 200)
        }
        let answer = try await send(
            .PUT, uploadURL, body: data, contentType: contentType, operation: .upload, timeout: timeouts.upload,
            authorized: false)
        if let error = FalResponseClassifier.error(for: answer, operation: .upload, url: uploadURL.absoluteString) {
            throw error
        }
        return fileURL
    }
}
