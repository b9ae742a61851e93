import AsyncHTTPClient
import FalClient
@testable import FalEmulator
import Foundation
import KlingCore
import Testing
import TestSupport

/// The sample tables of a video's first track and where its mdat lies, decoded to check a looped file holds together.
struct TrackTables {
    let stts: [[UInt64]]
    let stsc: [[UInt64]]
    let stss: [UInt64]
    let sizes: [Int]
    let chunkOffsets: [Int]
    let mdhd: (timescale: UInt64, duration: UInt64)
    let editDurations: [UInt64]
    let mdat: Range<Int>

    init(_ file: [UInt8]) throws {
        let spans = try BoxSpan.split(file[...])
        let moovSpan = try #require(spans.first { $0.type == "moov" })
        let mdatSpan = try #require(spans.first { $0.type == "mdat" })
        mdat = mdatSpan.bodyStart..<mdatSpan.end
        let moov = try #require(try EditableBox.parseSequence(file[moovSpan.start..<moovSpan.end]).first)
        let trak = try #require(moov.child("trak"))
        let mdia = try #require(trak.child("mdia"))
        let stbl = try #require(mdia.child("minf")?.child("stbl"))
        func table(_ type: String, _ widths: [Int]) throws -> [[UInt64]] {
            try EntryTable(try #require(stbl.child(type), "no \(type)"), widths: widths).entries
        }
        stts = try table("stts", [4, 4])
        stsc = try table("stsc", [4, 4, 4])
        stss = try table("stss", [4]).map { $0[0] }
        chunkOffsets = try table("stco", [4]).map { Int($0[0]) }
        let stsz = try #require(stbl.child("stsz")).body
        let count = Int(stsz.bigEndian(at: 8, width: 4))
        #expect(stsz.bigEndian(at: 4, width: 4) == 0, "the clips have one size per sample")
        sizes = (0..<count).map { Int(stsz.bigEndian(at: 12 + 4 * $0, width: 4)) }
        let mdhdBody = try #require(mdia.child("mdhd")).body
        mdhd = (mdhdBody.bigEndian(at: 12, width: 4), mdhdBody.bigEndian(at: 16, width: 4))
        editDurations = try EntryTable(try #require(trak.child("edts")?.child("elst")), widths: [4, 4, 4]).entries.map { $0[0] }
    }

    /// Every sample's byte range, chunk by chunk as stsc places them.
    func sampleRanges() -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        for (index, offset) in chunkOffsets.enumerated() {
            let chunk = UInt64(index + 1)
            let perChunk = Int(stsc.last { $0[0] <= chunk }?[1] ?? 0)
            var start = offset
            for _ in 0..<perChunk where ranges.count < sizes.count {
                ranges.append(start..<(start + sizes[ranges.count]))
                start += sizes[ranges.count - 1]
            }
        }
        return ranges
    }
}

@Suite("Emulator videos play for the duration asked for")
struct EmulatorVideoDurationTests {
    static let sizes: [String: (Int, Int)] = ["16:9": (320, 180), "9:16": (180, 320), "1:1": (240, 240)]
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    /// A layout's whole file, through the same chunking the file host serves.
    static func wholeFile(_ layout: VideoLayout) -> [UInt8] {
        layout.chunks(in: 0..<layout.totalBytes).flatMap { Array(layout.bytes(of: $0).readableBytesView) }
    }

    @Test("the embedded clips are 1 s at 320x180, 180x320 and 240x240", arguments: ["16:9", "9:16", "1:1"])
    func embeddedClips(ratio: String) throws {
        let summary = try MP4Summary.read(Array(VideoAsset.base(for: ratio).readableBytesView))
        let (width, height) = try #require(Self.sizes[ratio])
        #expect(summary == MP4Summary(durationSeconds: 1, width: width, height: height))
    }

    @Test("a video built for N seconds reads back as N seconds at the clip's size", arguments: [3, 5, 10], ["16:9", "9:16", "1:1"])
    func duration(seconds: Int, ratio: String) async throws {
        let layout = VideoLayout(aspectRatio: ratio, durationSeconds: seconds, requestID: "r-\(seconds)", requestedBytes: nil)
        let file = Self.wholeFile(layout)
        let (width, height) = try #require(Self.sizes[ratio])
        let summary = try MP4Summary.read(file)
        #expect(abs(summary.durationSeconds - Double(seconds)) <= 0.01)
        #expect(summary.width == width && summary.height == height)
        try await TemporaryDirectory.with { directory in
            let url = directory.file("video.mp4")
            try Data(file).write(to: url)
            #expect(try MP4Summary.read(fileAt: url.path) == summary)
            let inspected = try MP4Inspector(file: url)
            #expect(inspected.topLevelBoxes == ["ftyp", "moov", "free", "mdat", "free"])
        }
    }

    @Test("the looped sample tables agree with each other and read the clip's own mdat bytes", arguments: [3, 5, 10], ["16:9", "9:16", "1:1"])
    func tables(seconds: Int, ratio: String) throws {
        let base = Array(VideoAsset.base(for: ratio).readableBytesView)
        let looped = Array(VideoAsset.video(for: ratio, seconds: seconds).readableBytesView)
        let once = try TrackTables(base)
        let tables = try TrackTables(looped)
        #expect(once.sizes.count == 12)
        #expect(tables.stts.reduce(0) { $0 + Int($1[0]) } == tables.sizes.count)
        #expect(tables.sizes.count == seconds * once.sizes.count)
        #expect(tables.sizes == Array(Array(repeating: once.sizes, count: seconds).joined()))
        #expect(tables.stss == (0..<seconds).map { UInt64($0 * once.sizes.count + 1) }, "each repetition starts on its keyframe")
        #expect(tables.chunkOffsets.count == seconds * once.chunkOffsets.count)
        #expect(tables.mdhd.duration == UInt64(seconds) * once.mdhd.duration && tables.mdhd.timescale == once.mdhd.timescale)
        #expect(tables.editDurations == once.editDurations.map { $0 * UInt64(seconds) })
        #expect(tables.mdat.count == once.mdat.count, "the mdat is stored once")
        #expect(looped.count - base.count < 600, "a longer video costs only bigger tables")
        let ranges = tables.sampleRanges()
        let baseRanges = once.sampleRanges()
        #expect(ranges.count == tables.sizes.count)
        for (index, range) in ranges.enumerated() {
            #expect(range.lowerBound >= tables.mdat.lowerBound && range.upperBound <= tables.mdat.upperBound && range.upperBound <= looped.count)
            #expect(looped[range] == base[baseRanges[index % baseRanges.count]], "sample \(index) is the clip's sample")
        }
    }

    @Test("each shape is built once and shared; padding and ranges work on a looped video")
    func cacheAndPadding() throws {
        let first = VideoAsset.video(for: "9:16", seconds: 8)
        #expect(VideoAsset.video(for: "9:16", seconds: 8) == first)
        #expect(VideoAsset.video(for: "bogus", seconds: 4) == VideoAsset.video(for: "16:9", seconds: 4))
        let layout = VideoLayout(aspectRatio: "9:16", durationSeconds: 8, requestID: "r-pad", requestedBytes: 250_000)
        #expect(layout.base == first)
        #expect(layout.totalBytes == 250_000)
        let whole = Self.wholeFile(layout)
        #expect(try MP4Summary.read(whole) == MP4Summary(durationSeconds: 8, width: 180, height: 320))
        for range in [0..<1, 500..<9_500, first.readableBytes - 3..<first.readableBytes + 200, 249_000..<250_000] {
            let part = layout.chunks(in: range, chunkSize: 999).flatMap { Array(layout.bytes(of: $0).readableBytesView) }
            #expect(part == Array(whole[range]))
        }
    }

    @Test("a wrong duration is 2 s off, and 2 s short when 2 s more would pass 10 s")
    func wrongSeconds() {
        #expect((3...10).map(EmulatedRequest.wrongSeconds(insteadOf:)) == [5, 6, 7, 8, 9, 10, 7, 8])
        #expect(EmulatedRequest.requestedSeconds(in: ["duration": "7"]) == 7)
        #expect(EmulatedRequest.requestedSeconds(in: ["prompt": "no duration"]) == 5)
        #expect(EmulatedRequest.requestedSeconds(in: ["duration": "11"]) == 5)
    }

    /// Submits one request per duration 3…10 to `state` and reads back each result video's duration.
    func servedSeconds(_ state: EmulatorState) async throws -> [(requested: Int, served: Double)] {
        var found: [(Int, Double)] = []
        for requested in 3...10 {
            // The simulated clock only moves forward: each request is submitted after the last one was looked at.
            let submitted = t0.addingTimeInterval(Double(requested) * 100)
            let input: JSONValue = ["prompt": "a clock", "duration": .string(String(requested)), "aspect_ratio": "1:1"]
            let decision = await state.submit(
                endpoint: "fal-ai/kling-video/o1/reference-to-video", app: "fal-ai/kling-video", key: "k",
                body: input.canonicalData(), input: input, fault: nil, now: submitted)
            guard case .created(let id, _) = decision else { throw HarnessError("submit was not accepted: \(decision)") }
            guard case .video(let layout) = await state.resultVideo(requestID: id, now: submitted.addingTimeInterval(60)) else {
                throw HarnessError("no video for \(id)")
            }
            found.append((requested, try MP4Summary.read(Self.wholeFile(layout)).durationSeconds))
        }
        return found
    }

    @Test("with wrongDurationProbability 1 every video is off by at least 1 s; with 0 none is")
    func wrongDurationKnob() async throws {
        var always = EmulatorConfiguration()
        always.wrongDurationProbability = 1
        let wrongState = EmulatorState(configuration: always)
        for (requested, served) in try await servedSeconds(wrongState) {
            #expect(abs(served - Double(requested)) >= 1, "requested \(requested) s, served \(served) s")
            #expect((1...10).contains(served))
        }
        #expect(await wrongState.counters().faultsInjected == ["wrong-duration": 8])
        let rightState = EmulatorState(configuration: EmulatorConfiguration())
        for (requested, served) in try await servedSeconds(rightState) {
            #expect(abs(served - Double(requested)) <= 0.01, "requested \(requested) s, served \(served) s")
        }
        #expect(await rightState.counters().faultsInjected.isEmpty)
    }

    @Test("the wrong-duration draws follow the seed")
    func wrongDurationSeeded() async throws {
        var half = EmulatorConfiguration()
        half.wrongDurationProbability = 0.5
        half.seed = 42
        let first = try await servedSeconds(EmulatorState(configuration: half)).map(\.served)
        let again = try await servedSeconds(EmulatorState(configuration: half)).map(\.served)
        #expect(first == again)
        let state = EmulatorState(configuration: half)
        let requested = try await servedSeconds(state)
        let wrongCount = requested.filter { abs($0.served - Double($0.requested)) >= 1 }.count
        #expect(await state.counters().faultsInjected["wrong-duration"] == wrongCount)
        #expect(wrongCount > 0 && wrongCount < 8, "about half of the eight are wrong")
    }

    @Test("over HTTP: a downloaded video plays for the duration submitted, or 2 s more once the knob is on")
    func endToEnd() async throws {
        try await EmulatorHarness.run(configure: { $0.videoBytes = 200_000 }) { harness in
            func fetch(_ name: String, in directory: TemporaryDirectory) async throws -> MP4Summary {
                let input: JSONValue = ["prompt": .string(name), "duration": "7", "aspect_ratio": "9:16"]
                let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: input)
                _ = try await harness.waitUntilCompleted(receipt.handle)
                let video = try #require(VideoOutput(result: try await harness.client.result(receipt.handle)))
                let destination = directory.file("\(name).mp4")
                let report = try await harness.client.download(from: video.url, to: .init(destination.path), expectedBytes: video.fileSize)
                #expect(report.bytes == 200_000)
                return try MP4Summary.read(fileAt: destination.path)
            }
            try await TemporaryDirectory.with { directory in
                let asked = try await fetch("asked", in: directory)
                #expect(asked == MP4Summary(durationSeconds: 7, width: 180, height: 320))
                await harness.emulator.state.configure { $0.wrongDurationProbability = 1 }
                let wrong = try await fetch("wrong", in: directory)
                #expect(wrong == MP4Summary(durationSeconds: 9, width: 180, height: 320))
            }
        }
    }

    @Test("fal-emulator takes --wrong-duration and refuses a probability outside 0…1")
    func commandLine() async throws {
        let refused = try ChildProcess("fal-emulator", ["--wrong-duration", "1.5"])
        #expect(await refused.waitForExit() != 0)
        #expect(refused.stderr.contains("--wrong-duration must be a probability from 0 to 1"))
        let emulator = try ChildProcess("fal-emulator", ["--port", "0", "--wrong-duration", "0.25"])
        defer { emulator.signal(SIGTERM) }
        let base = String(try await emulator.waitForLine(startingWith: "LISTENING ").dropFirst("LISTENING ".count))
        let answer = try await HTTPClient.shared.execute(.init(url: base + "/_emulator/config"), timeout: .seconds(10))
        let body = try await answer.body.collect(upTo: 1 << 20)
        let configuration = try JSONDecoder().decode(EmulatorConfiguration.self, from: Data(body.readableBytesView))
        #expect(configuration.wrongDurationProbability == 0.25)
    }
}
