import KlingCore

/// One validated job: everything needed to build the model input, with each image already checked.
public struct JobSpec: Sendable, Hashable, Codable {
    /// Unique within its file; letters, digits, `.`, `_` and `-`.
    public var name: String
    /// The prompt as sent, without surrounding whitespace.
    public var prompt: String
    /// Style references and start frame, `@Image1`, `@Image2`…
    public var imageURLs: [ImageSource]
    /// Tracked characters and objects, `@Element1`, `@Element2`…
    public var elements: [ElementSpec]
    /// Seconds of video, 3 to 10.
    public var duration: Int
    public var aspectRatio: AspectRatio
    /// The fal endpoint id.
    public var endpoint: String
    /// `normal` or `low` for this job at fal, over the `queue_priority` setting (a batch's `defaults:` sets it for
    /// all its jobs); nil: the setting's. Not part of the model's input.
    public var queuePriority: String?
    /// `high`, `normal` or `low`: high jobs are claimed before normal ones, normal before low; low also asks fal
    /// for its low queue priority unless `queuePriority` says otherwise. nil: normal.
    public var priority: String?
    /// Free-form tags (strings, numbers, booleans) copied into the manifest; nil when the spec gives none.
    public var meta: [String: JSONValue]?

    public init(
        name: String, prompt: String, imageURLs: [ImageSource] = [], elements: [ElementSpec] = [], duration: Int = 5,
        aspectRatio: AspectRatio = .landscape, endpoint: String = KnownEndpoints.default, queuePriority: String? = nil, priority: String? = nil,
        meta: [String: JSONValue]? = nil
    ) {
        self.name = name
        self.prompt = prompt
        self.imageURLs = imageURLs
        self.elements = elements
        self.duration = duration
        self.aspectRatio = aspectRatio
        self.endpoint = endpoint
        self.queuePriority = queuePriority
        self.priority = priority
        self.meta = meta
    }

    /// The queue priority sent to fal: the job's own, else low for a low-priority job, else the setting's (nil).
    public var effectiveQueuePriority: String? { queuePriority ?? (priority == "low" ? "low" : nil) }

    /// Inputs as fal counts them against the limit of 7: each element one, each image URL one.
    public var inputCount: Int { imageURLs.count + elements.count }

    /// Every image of the job, in the order they appear in the input.
    public var allImages: [ImageSource] {
        imageURLs + elements.flatMap { [$0.frontal] + $0.references }
    }

    /// The local files among the images, each once.
    public var localImages: [LocalImage] {
        var seen = Set<String>()
        return allImages.compactMap { source -> LocalImage? in
            guard case .local(let image) = source, seen.insert(image.sha256).inserted else { return nil }
            return image
        }
    }

    /// The price of this job at its endpoint's price.
    public func estimatedCost(_ prices: PriceList = .published) -> USD { prices.cost(endpoint: endpoint, seconds: duration) }

    /// The exact JSON body fal receives, with each image replaced by the URL `resolve` gives it
    /// (for a local file, its upload URL). Duration is sent as a string, as fal's enum expects.
    public func modelInput(resolve: (ImageSource) -> String) -> JSONValue {
        var body: [String: JSONValue] = [
            "prompt": .string(prompt),
            "duration": .string(String(duration)),
            "aspect_ratio": .string(aspectRatio.rawValue),
        ]
        if !imageURLs.isEmpty { body["image_urls"] = .array(imageURLs.map { .string(resolve($0)) }) }
        if !elements.isEmpty {
            body["elements"] = .array(elements.map { element in
                var fields: [String: JSONValue] = ["frontal_image_url": .string(resolve(element.frontal))]
                if !element.references.isEmpty {
                    fields["reference_image_urls"] = .array(element.references.map { .string(resolve($0)) })
                }
                return .object(fields)
            })
        }
        return .object(body)
    }
}

/// One tracked element: a frontal image and optional reference angles.
public struct ElementSpec: Sendable, Hashable, Codable {
    public var frontal: ImageSource
    public var references: [ImageSource]

    public init(frontal: ImageSource, references: [ImageSource] = []) {
        self.frontal = frontal
        self.references = references
    }
}

/// Where an image comes from.
public enum ImageSource: Sendable, Hashable, Codable {
    /// A public https URL, passed to fal as is.
    case remote(String)
    /// A `data:` URI, passed as is (already checked like a local file).
    case dataURI(String)
    /// A local file, uploaded to fal storage before submission.
    case local(LocalImage)

    /// The URL to send when no upload is involved; for local files, their path as written.
    public var written: String {
        switch self {
        case .remote(let url): return url
        case .dataURI(let uri): return uri
        case .local(let image): return image.written
        }
    }
}

/// A checked local image: where it is, what it is, and its content hash (the upload cache key).
public struct LocalImage: Sendable, Hashable, Codable {
    /// The absolute path after resolving symbolic links.
    public var path: String
    /// The path as the spec wrote it, for messages and manifests.
    public var written: String
    /// Lower-case hex SHA-256 of the file's bytes.
    public var sha256: String
    public var byteCount: Int
    public var header: ImageHeader

    public init(path: String, written: String, sha256: String, byteCount: Int, header: ImageHeader) {
        self.path = path
        self.written = written
        self.sha256 = sha256
        self.byteCount = byteCount
        self.header = header
    }
}

/// The three frame shapes the model makes.
public enum AspectRatio: String, Sendable, Hashable, Codable, CaseIterable {
    case landscape = "16:9"
    case portrait = "9:16"
    case square = "1:1"

    /// Reads what people type: `16:9`, `16x9`, `16/9`, `16 : 9`, or `landscape`, `portrait`, `square`.
    public init?(lenient text: String) {
        let compact = text.lowercased().filter { !$0.isWhitespace }
        switch compact {
        case "16:9", "16x9", "16/9", "16×9", "landscape", "wide", "horizontal": self = .landscape
        case "9:16", "9x16", "9/16", "9×16", "portrait", "vertical", "tall": self = .portrait
        case "1:1", "1x1", "1/1", "1×1", "square": self = .square
        default: return nil
        }
    }
}

/// The endpoints a spec may name.
public enum KnownEndpoints {
    /// Kling O1 reference-to-video, Pro tier.
    public static let `default` = "fal-ai/kling-video/o1/reference-to-video"
    /// Kling O1 reference-to-video, Standard tier.
    public static let standard = "fal-ai/kling-video/o1/standard/reference-to-video"
    public static let all = [`default`, standard]
}
