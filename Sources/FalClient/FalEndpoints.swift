import Foundation
import KlingCore

/// Where fal's three services live; one base URL points all of them at an emulator.
///
/// fal splits its API over the queue host, the storage (REST) host and the platform API host.
/// The emulator serves all three on one port, so a single `--fal-url` is enough to redirect every call.
public struct FalEndpoints: Sendable, Hashable, CustomStringConvertible {
    /// `https://queue.fal.run`: submit, status, result, cancel.
    public var queue: URL
    /// `https://rest.fal.ai`: storage upload initiation.
    public var storage: URL
    /// `https://api.fal.ai`: the platform API (request listing).
    public var platform: URL

    public init(queue: URL, storage: URL, platform: URL) {
        self.queue = queue
        self.storage = storage
        self.platform = platform
    }

    /// Every service on one base URL, as the emulator serves them.
    public init(baseURL: URL) {
        self.init(queue: baseURL, storage: baseURL, platform: baseURL)
    }

    /// fal's real hosts.
    public static let production = FalEndpoints(
        queue: URL(string: "https://queue.fal.run")!,
        storage: URL(string: "https://rest.fal.ai")!,
        platform: URL(string: "https://api.fal.ai")!
    )

    /// Parses a user-given base URL (`--fal-url`, `KLING_BATCH_FAL_URL`); nil when it is not an http(s) URL with a host.
    public static func parseBaseURL(_ text: String) -> URL? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let url = URL(string: trimmed.hasSuffix("/") ? String(trimmed.dropLast()) : trimmed),
            let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty
        else { return nil }
        return url
    }

    public var isProduction: Bool { self == .production }

    /// The origins the key may be sent to: these three services and nothing else.
    public var origins: Set<String> { Set([queue, storage, platform].compactMap(FalOrigin.of)) }

    /// The queue's origin, recorded with every request so that a run configured for another never touches it.
    public var queueOrigin: String { FalOrigin.of(queue) ?? queue.absoluteString }

    /// The storage origin an upload went through, recorded with the upload cache.
    public var storageOrigin: String { FalOrigin.of(storage) ?? storage.absoluteString }

    /// Whether an authenticated call to `url` may carry the key.
    public func mayReceiveKey(_ url: URL) -> Bool { FalOrigin.of(url).map(origins.contains) ?? false }

    public var description: String {
        isProduction ? "fal (production hosts)" : "fal at \(queue.absoluteString)"
    }
}

/// A model endpoint id such as `fal-ai/kling-video/o1/reference-to-video`.
///
/// Queue URLs for status, result and cancel use only `owner/alias`, never the subpath,
/// so the id is split once here rather than by string surgery at each call.
public struct FalEndpointID: Sendable, Hashable, Codable, CustomStringConvertible {
    public let rawValue: String
    public let owner: String
    public let alias: String
    /// Everything after `owner/alias`, without a leading slash; nil when absent.
    public let subpath: String?

    /// Kling O1 reference-to-video, Pro tier: the product's default.
    public static let klingO1ReferenceToVideo = FalEndpointID("fal-ai/kling-video/o1/reference-to-video")!
    /// Kling O1 reference-to-video, Standard tier.
    public static let klingO1StandardReferenceToVideo = FalEndpointID(
        "fal-ai/kling-video/o1/standard/reference-to-video")!

    /// Parses an id; nil unless it has at least `owner/alias` made of letters, digits, `.`, `_` and `-`.
    public init?(_ rawValue: String) {
        let segments = rawValue.split(separator: "/", omittingEmptySubsequences: false)
        guard segments.count >= 2,
            segments.allSatisfy({ !$0.isEmpty && $0.allSatisfy(Self.isAllowed) && $0 != "." && $0 != ".." })
        else { return nil }
        self.rawValue = rawValue
        self.owner = String(segments[0])
        self.alias = String(segments[1])
        self.subpath = segments.count > 2 ? segments[2...].joined(separator: "/") : nil
    }

    /// `owner/alias`: the prefix of every per-request queue URL.
    public var appPath: String { "\(owner)/\(alias)" }

    public var description: String { rawValue }

    private static func isAllowed(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || "._-".contains(character))
    }

    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        guard let id = FalEndpointID(raw) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad endpoint id \(raw)"))
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
