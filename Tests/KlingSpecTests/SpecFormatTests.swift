import Foundation
import KlingCore
import KlingSpec
import Testing
import TestSupport

/// Validates `text` as `name` inside a fixture folder and returns the report.
func validate(_ text: String, name: String = "spec.yaml", options: SpecValidator.Options = .init()) throws -> SpecReport {
    let root = try TemporaryDirectory("spec")
    defer { root.remove() }
    let specs = try ImageFixtures.makeSpecFolder(in: root.url)
    let path = specs.appendingPathComponent(name).path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return SpecValidator(options: options).validate(fileAt: path)
}

@Suite("What people write means what they meant")
struct SpecFormatTests {
    @Test("durations as numbers, strings and with units", arguments: ["5", "\"5\"", "5s", "5 s", "'5 sec'", "5 seconds", "5.0", " 5 "])
    func durations(written: String) throws {
        let report = try validate("prompt: a cat\nduration: \(written)\n")
        #expect(report.isValid, "\(report.errors)")
        #expect(report.jobs.first?.duration == 5)
    }

    @Test("aspect ratios as people type them", arguments: [
        ("16:9", AspectRatio.landscape), ("\"16:9\"", .landscape), ("16x9", .landscape), ("16/9", .landscape),
        ("\"16 : 9\"", .landscape), ("landscape", .landscape), ("9:16", .portrait), ("portrait", .portrait), ("1:1", .square),
        ("Square", .square),
    ])
    func aspectRatios(written: String, expected: AspectRatio) throws {
        let report = try validate("prompt: a cat\naspect_ratio: \(written)\n")
        #expect(report.jobs.first?.aspectRatio == expected, "\(report.errors)")
    }

    @Test("defaults: 5 seconds, 16:9, the Pro endpoint, and the file's stem as name")
    func defaults() throws {
        let job = try #require(try validate("prompt: a cat\n", name: "my cat video.yaml").jobs.first)
        #expect(job.duration == 5)
        #expect(job.aspectRatio == .landscape)
        #expect(job.endpoint == KnownEndpoints.default)
        #expect(job.name == "my-cat-video")
    }

    @Test("a batch shares defaults; jobs override them; unnamed jobs are stem-N")
    func batch() throws {
        let report = try validate("""
            defaults: {duration: 10, aspect_ratio: 9:16}
            jobs:
              - name: teaser-a
                prompt: first
              - prompt: second
                duration: 3
              - prompt: third
                endpoint: fal-ai/kling-video/o1/standard/reference-to-video
            """, name: "promo.yaml")
        #expect(report.isValid, "\(report.errors)")
        #expect(report.jobs.map(\.name) == ["teaser-a", "promo-2", "promo-3"])
        #expect(report.jobs.map(\.duration) == [10, 3, 10])
        #expect(report.jobs.allSatisfy { $0.aspectRatio == .portrait })
        #expect(report.jobs[2].endpoint == KnownEndpoints.standard)
        #expect(report.totalSeconds == 23)
        #expect(report.estimatedCost() == USD(micros: 23 * 112_000))
        #expect(report.batchName == "promo")
    }

    @Test("meta: the batch's, then defaults', then the job's own, key by key; values keep their YAML type; priority and queue_priority are read")
    func metaAndPriority() throws {
        let report = try validate("""
            meta: {client: acme, shot: 1, campaign: spring}
            defaults: {meta: {shot: 2, approved: false}, priority: low}
            jobs:
              - prompt: first
                meta: {shot: 3, ratio: 1.5, code: "007"}
                priority: high
                queue_priority: normal
              - prompt: second
              - prompt: third
                meta: {shot: 010, country: NO, at: 1:30, version: 1.10, hex: 0x1F, big: -12}
            """, name: "tags.yaml")
        #expect(report.isValid, "\(report.errors)")
        #expect(report.jobs[0].meta == ["client": "acme", "shot": 3, "campaign": "spring", "approved": false, "ratio": 1.5, "code": "007"])
        #expect(report.jobs[1].meta == ["client": "acme", "shot": 2, "campaign": "spring", "approved": false])
        // Written as JSON would read them, never through YAML 1.1's octal, base-60 or yes/no rules.
        #expect(report.jobs[2].meta == [
            "client": "acme", "shot": "010", "campaign": "spring", "approved": false, "country": "NO", "at": "1:30", "version": "1.10",
            "hex": "0x1F", "big": -12,
        ])
        #expect(report.jobs.map(\.priority) == ["high", "low", "low"])
        #expect(report.jobs.map(\.effectiveQueuePriority) == ["normal", "low", "low"])
        let plain = try validate("prompt: no tags\n", name: "plain.yaml")
        #expect(plain.jobs.first?.meta == nil && plain.jobs.first?.priority == nil, "a spec without them encodes as before")
    }

    @Test("YAML anchors and merge keys work, and x- keys hold them")
    func mergeKeys() throws {
        let report = try validate("""
            x-common: &common
              duration: 8
              aspect_ratio: 1:1
            jobs:
              - <<: *common
                prompt: merged
              - <<: *common
                prompt: overridden
                duration: 4
            """)
        #expect(report.isValid, "\(report.errors)")
        #expect(report.jobs.map(\.duration) == [8, 4])
        #expect(report.jobs.allSatisfy { $0.aspectRatio == .square })
    }

    @Test("a single image instead of a list, and an element given as just its frontal image")
    func singleValues() throws {
        let report = try validate("""
            prompt: "@Element1 in the style of @Image1"
            image_urls: img/ok.png
            elements:
              - img/ok.jpg
              - frontal_image_url: img/ok.png
                reference_image_urls: img/ok.jpg
            """)
        #expect(report.isValid, "\(report.errors)")
        let job = try #require(report.jobs.first)
        #expect(job.imageURLs.count == 1)
        #expect(job.elements.count == 2)
        #expect(job.elements[1].references.count == 1)
        #expect(report.warnings.map(\.fieldPath) == ["elements[1]"])
    }

    @Test("JSON files are YAML too")
    func json() throws {
        let report = try validate(#"{"prompt": "@Image1 at dusk", "image_urls": ["img/ok.png"], "duration": "7", "aspect_ratio": "9:16"}"#, name: "job.json")
        #expect(report.isValid, "\(report.errors)")
        #expect(report.jobs.first?.duration == 7)
    }

    @Test("unreferenced inputs are warnings, and the file stays valid")
    func unreferencedWarnings() throws {
        let report = try validate("""
            prompt: "@Image2 only"
            image_urls: [img/ok.png, img/ok.jpg]
            elements: [img/ok.png]
            """)
        #expect(report.isValid)
        #expect(report.warnings.map(\.fieldPath) == ["image_urls[0]", "elements[0]"])
        #expect(report.warnings[0].description.contains("spec.yaml:2:14: warning: image_urls[0]: given but never referenced in the prompt as @Image1"))
    }

    @Test("local images are checked once and carry their hash; https and data: URIs pass through")
    func imageSources() throws {
        let tiny = Data(ImageFixtures.png(400, 400)).base64EncodedString()
        let report = try validate("""
            prompt: "@Image1 @Image2 @Image3 @Element1"
            image_urls: [img/ok.png, "https://cdn.example.com/a.png", "data:image/png;base64,\(tiny)"]
            elements:
              - frontal_image_url: img/ok.png
                reference_image_urls: [./img/ok.png]
            """)
        #expect(report.isValid, "\(report.errors)")
        let job = try #require(report.jobs.first)
        #expect(job.localImages.count == 1)
        #expect(job.localImages.first?.header == ImageHeader(format: .png, width: 400, height: 400))
        guard case .remote(let url) = job.imageURLs[1], case .dataURI = job.imageURLs[2] else { Issue.record("sources"); return }
        #expect(url == "https://cdn.example.com/a.png")
    }

    @Test("a validator reads a shared image once across files, and again once it is changed")
    func imageCacheAcrossFiles() throws {
        let root = try TemporaryDirectory("cache")
        defer { root.remove() }
        let specs = try ImageFixtures.makeSpecFolder(in: root.url)
        let image = specs.appendingPathComponent("img/shared.png").path
        try Data(ImageFixtures.png(400, 400)).write(to: URL(fileURLWithPath: image))
        let validator = SpecValidator()
        func check(_ index: Int) throws -> SpecReport {
            let path = specs.appendingPathComponent("job-\(index).yaml").path
            try "prompt: '@Image1 take \(index)'\nimage_urls: [img/shared.png]\n".write(toFile: path, atomically: true, encoding: .utf8)
            return validator.validate(fileAt: path)
        }
        let first = try check(1), second = try check(2)
        #expect(first.isValid && second.isValid)
        #expect(first.jobs.first?.localImages == second.jobs.first?.localImages)
        #expect(validator.imageCache?.count == 1)

        // Same size, new content (a 2,000×300 image is too wide): the change is seen, not the remembered answer.
        let wide = ImageFixtures.png(2000, 300)
        #expect(wide.count == ImageFixtures.png(400, 400).count)
        try Data(wide).write(to: URL(fileURLWithPath: image))
        let third = try check(3)
        #expect(!third.isValid)
        #expect(third.errors.contains { $0.message.contains("2000×300 px") }, "\(third.errors)")

        // A validator made without a cache reads every time, and agrees.
        try Data(ImageFixtures.png(500, 500)).write(to: URL(fileURLWithPath: image))
        let uncached = SpecValidator(imageCache: nil)
        let path = specs.appendingPathComponent("job-1.yaml").path
        #expect(uncached.validate(fileAt: path).jobs.first?.localImages.first?.header.width == 500)
        #expect(validator.validate(fileAt: path).jobs.first?.localImages.first?.header.width == 500)
    }

    @Test("an allowed root admits absolute paths under it, and only there")
    func allowedRoots() throws {
        let root = try TemporaryDirectory("roots")
        defer { root.remove() }
        let specs = try ImageFixtures.makeSpecFolder(in: root.url)
        let outside = root.url.appendingPathComponent("outside/ok.png").path
        let path = specs.appendingPathComponent("abs.yaml").path
        try "prompt: \"@Image1\"\nimage_urls: [\(outside)]\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(!SpecValidator().validate(fileAt: path).isValid)
        var options = SpecValidator.Options()
        options.allowedRoots = [root.url.appendingPathComponent("outside").path]
        #expect(SpecValidator(options: options).validate(fileAt: path).isValid)
    }

    @Test("the model input is exactly what fal expects: duration as a string, images resolved")
    func modelInput() throws {
        let job = try #require(try validate("""
            prompt: "  @Element1 meets @Image1  "
            image_urls: [img/ok.png]
            elements:
              - frontal_image_url: img/ok.jpg
                reference_image_urls: [img/ok.png]
            duration: 6
            aspect_ratio: 1:1
            """).jobs.first)
        let input = job.modelInput { source in
            if case .local(let image) = source { return "https://fal.media/\(image.sha256.prefix(8))" }
            return source.written
        }
        let pngURL = "https://fal.media/\(job.imageURLs[0].localSHA.prefix(8))"
        let jpgURL = "https://fal.media/\(job.elements[0].frontal.localSHA.prefix(8))"
        #expect(input == [
            "prompt": "@Element1 meets @Image1", "duration": "6", "aspect_ratio": "1:1",
            "image_urls": [.string(pngURL)],
            "elements": [["frontal_image_url": .string(jpgURL), "reference_image_urls": [.string(pngURL)]]],
        ])
        #expect(job.estimatedCost() == USD(micros: 672_000))
    }

    @Test("spec files in a folder: hidden, temporary and editor files are skipped")
    func specFiles() throws {
        try TemporaryDirectory.with("files") { directory in
            for name in ["a.yaml", "b.yml", "c.json", ".hidden.yaml", "d.yaml.tmp", "e.yaml~", ".e.yaml.swp", "f.txt", "g.part", "#h.yaml#", "a.yaml.errors.txt"] {
                try Data().write(to: directory.file(name))
            }
            try FileManager.default.createDirectory(at: directory.file("sub.yaml"), withIntermediateDirectories: true)
            let found = try SpecFiles.expand([directory.path]).files.map { ($0.path as NSString).lastPathComponent }
            #expect(found == ["a.yaml", "b.yml", "c.json"])
            #expect(throws: SpecFilesError.self) { try SpecFiles.expand([directory.path + "/missing"]) }
        }
    }
}

extension ImageSource {
    var localSHA: String {
        if case .local(let image) = self { return image.sha256 }
        return ""
    }
}

extension TemporaryDirectory {
    static func with<T>(_ label: String, _ body: (TemporaryDirectory) throws -> T) throws -> T {
        let directory = try TemporaryDirectory(label)
        defer { directory.remove() }
        return try body(directory)
    }
}
