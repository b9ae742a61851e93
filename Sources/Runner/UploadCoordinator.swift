import FalClient
import Foundation
import JobStore
import KlingSpec

/// Uploads each distinct local image once: by content (SHA-256), shared between jobs, and reused from the
/// store's cache while it is fresh. Two jobs needing the same image at once share one upload.
actor UploadCoordinator {
    private let store: any JobQueue
    private let client: FalClient
    private let permits: AsyncSemaphore
    private let reuse: Duration
    /// The storage origin uploads go through: a cached URL from another one is never reused.
    private let origin: String
    private var inFlight: [String: Task<String, any Error>] = [:]
    /// Uploads fal has that the store could not record yet (a full or read-only state disk), by SHA-256: a job
    /// waiting for the disk records this one when it tries again, instead of uploading the file again each time.
    private var unrecorded: [String: (image: UploadedImage, at: Date)] = [:]

    init(store: any JobQueue, client: FalClient, permits: AsyncSemaphore, reuse: Duration, origin: String) {
        self.store = store
        self.client = client
        self.permits = permits
        self.reuse = reuse
        self.origin = origin
    }

    /// The fal URL for `image`, uploading it if needed.
    func url(for image: LocalImage) async throws -> String {
        if let cached = try await store.cachedUpload(sha256: image.sha256, origin: origin, notBefore: Date().addingTimeInterval(-reuse.seconds)) {
            return cached
        }
        if let kept = unrecorded[image.sha256], Date().timeIntervalSince(kept.at) < reuse.seconds {
            try await store.recordUpload(kept.image)
            unrecorded[image.sha256] = nil
            return kept.image.fileURL
        }
        if let running = inFlight[image.sha256] { return try await running.value }
        let task = Task { [store, client, permits, origin] in
            let uploaded = try await permits.withPermit {
                let data = try Self.read(image)
                let url = try await client.upload(data, fileName: (image.written as NSString).lastPathComponent, contentType: image.header.format.contentType)
                return UploadedImage(
                    sha256: image.sha256, fileURL: url.absoluteString, byteCount: data.count, contentType: image.header.format.contentType, origin: origin)
            }
            do {
                try await store.recordUpload(uploaded)
            } catch {
                keep(uploaded)
                throw error
            }
            return uploaded.fileURL
        }
        inFlight[image.sha256] = task
        defer { inFlight[image.sha256] = nil }
        return try await task.value
    }

    private func keep(_ uploaded: UploadedImage) {
        unrecorded[uploaded.sha256] = (uploaded, Date())
    }

    /// The image's bytes, refusing a file that changed or vanished since its spec was accepted.
    static func read(_ image: LocalImage) throws -> Data {
        guard let data = FileManager.default.contents(atPath: image.path) else {
            throw ImageChanged(path: image.path, written: image.written, reason: "it no longer exists or cannot be read")
        }
        let sha = sha256Hex(data)
        guard sha == image.sha256 else {
            throw ImageChanged(path: image.path, written: image.written, reason: "its content changed after the spec was accepted")
        }
        return data
    }
}

/// A local image that is not the one validated: the job must not run with a different picture.
struct ImageChanged: Error, CustomStringConvertible {
    let path: String
    let written: String
    let reason: String
    var description: String { "the image '\(written)' (\(path)) cannot be uploaded: \(reason); fix it and run the spec again" }
}
