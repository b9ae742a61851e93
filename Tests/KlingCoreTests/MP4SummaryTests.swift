import Foundation
import KlingCore
import Testing

/// Hand-built MP4 boxes, so each test states exactly the layout it reads.
enum MP4Fixture {
    static func box(_ type: String, _ body: [UInt8]) -> [UInt8] { be(UInt64(body.count + 8), 4) + Array(type.utf8) + body }

    /// A box with a 64-bit `largesize` header (size field 1).
    static func largeBox(_ type: String, _ body: [UInt8]) -> [UInt8] { be(1, 4) + Array(type.utf8) + be(UInt64(body.count + 16), 8) + body }

    static func be(_ value: UInt64, _ width: Int) -> [UInt8] {
        (0..<width).map { UInt8(truncatingIfNeeded: value >> UInt64((width - 1 - $0) * 8)) }
    }

    static let ftyp = box("ftyp", Array("isom".utf8) + be(512, 4) + Array("isomiso2avc1mp41".utf8))

    /// A movie header: version 0 has 32-bit times, version 1 64-bit ones.
    static func mvhd(version: UInt8, timescale: UInt32, duration: UInt64) -> [UInt8] {
        let times = version == 1 ? be(0, 8) + be(0, 8) + be(UInt64(timescale), 4) + be(duration, 8)
            : be(0, 4) + be(0, 4) + be(UInt64(timescale), 4) + be(duration, 4)
        return box("mvhd", [version, 0, 0, 0] + times + be(0x0001_0000, 4) + be(0x0100, 2) + [UInt8](repeating: 0, count: 10 + 36 + 24) + be(2, 4))
    }

    /// A track header showing `width`×`height` (16.16 fixed point; `fraction` goes in the low 16 bits).
    static func tkhd(version: UInt8, width: UInt32, height: UInt32, fraction: UInt32 = 0) -> [UInt8] {
        let times = version == 1 ? be(0, 8) + be(0, 8) + be(1, 4) + be(0, 4) + be(1000, 8) : be(0, 4) + be(0, 4) + be(1, 4) + be(0, 4) + be(1000, 4)
        let tail = [UInt8](repeating: 0, count: 8 + 8 + 36) + be(UInt64(width) << 16 | UInt64(fraction), 4) + be(UInt64(height) << 16 | UInt64(fraction), 4)
        return box("tkhd", [version, 0, 0, 3] + times + tail)
    }

    static func hdlr(_ handler: String) -> [UInt8] { box("hdlr", be(0, 4) + be(0, 4) + Array(handler.utf8) + be(0, 12) + [0]) }

    /// A track with a header and, when `handler` is given, an mdia/hdlr naming its kind.
    static func trak(_ tkhd: [UInt8], handler: String?) -> [UInt8] {
        box("trak", tkhd + (handler.map { box("mdia", hdlr($0)) } ?? []))
    }

    static func moov(_ children: [UInt8]...) -> [UInt8] { box("moov", children.flatMap { $0 }) }

    static let videoTrack = trak(tkhd(version: 0, width: 1280, height: 720), handler: "vide")
}

@Suite("MP4 summaries: duration and display size from the moov")
struct MP4SummaryTests {
    @Test("version 0 movie and track headers")
    func version0() throws {
        let file = MP4Fixture.ftyp + MP4Fixture.moov(MP4Fixture.mvhd(version: 0, timescale: 600, duration: 3000), MP4Fixture.videoTrack)
            + MP4Fixture.box("mdat", [UInt8](repeating: 7, count: 100))
        #expect(try MP4Summary.read(file) == MP4Summary(durationSeconds: 5, width: 1280, height: 720))
    }

    @Test("version 1 headers with 64-bit times; a fractional display size keeps its integer part")
    func version1() throws {
        let moov = MP4Fixture.moov(
            MP4Fixture.mvhd(version: 1, timescale: 90_000, duration: 90_000 * 7 + 45_000),
            MP4Fixture.trak(MP4Fixture.tkhd(version: 1, width: 1920, height: 1080, fraction: 0x8000), handler: "vide"))
        let summary = try MP4Summary.read(MP4Fixture.ftyp + moov + MP4Fixture.box("mdat", []))
        #expect(summary == MP4Summary(durationSeconds: 7.5, width: 1920, height: 1080))
    }

    @Test("64-bit box sizes, and a last box sized 0 (to the end of the file)")
    func largeAndOpenSizes() throws {
        let moov = MP4Fixture.largeBox("moov", MP4Fixture.mvhd(version: 0, timescale: 1000, duration: 4000) + MP4Fixture.videoTrack)
        let file = MP4Fixture.ftyp + MP4Fixture.largeBox("mdat", [1, 2, 3]) + moov + MP4Fixture.be(0, 4) + Array("mdat".utf8) + [9, 9, 9]
        #expect(try MP4Summary.read(file) == MP4Summary(durationSeconds: 4, width: 1280, height: 720))
    }

    @Test("the first video track decides the size: a sound track before it does not, a handler-less one is the fallback")
    func trackChoice() throws {
        let mvhd = MP4Fixture.mvhd(version: 0, timescale: 1000, duration: 1000)
        let sound = MP4Fixture.trak(MP4Fixture.tkhd(version: 0, width: 0, height: 0), handler: "soun")
        let hint = MP4Fixture.trak(MP4Fixture.tkhd(version: 0, width: 100, height: 50), handler: "hint")
        let video = MP4Fixture.trak(MP4Fixture.tkhd(version: 0, width: 640, height: 360), handler: "vide")
        #expect(try MP4Summary.read(MP4Fixture.moov(mvhd, sound, hint, video)) == MP4Summary(durationSeconds: 1, width: 640, height: 360))
        #expect(try MP4Summary.read(MP4Fixture.moov(mvhd, sound, hint)) == MP4Summary(durationSeconds: 1, width: 100, height: 50))
        #expect(try MP4Summary.read(MP4Fixture.moov(mvhd, sound)) == MP4Summary(durationSeconds: 1, width: 0, height: 0))
    }

    @Test("a moov after a 5 GB mdat is found by seeking; the mdat is never read")
    func moovAfterHugeMdat() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mp4-\(UUID().uuidString.prefix(8)).mp4").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let mdatBody: UInt64 = 5 << 30
        let head = MP4Fixture.ftyp + MP4Fixture.be(1, 4) + Array("mdat".utf8) + MP4Fixture.be(mdatBody + 16, 8)
        #expect(FileManager.default.createFile(atPath: path, contents: Data(head)))
        let handle = try #require(FileHandle(forWritingAtPath: path))
        // A sparse hole: the file is 5 GB long without 5 GB of disk or memory.
        try handle.truncate(atOffset: UInt64(head.count) + mdatBody)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(MP4Fixture.moov(MP4Fixture.mvhd(version: 0, timescale: 1000, duration: 10_000), MP4Fixture.videoTrack)))
        try handle.close()
        #expect(try MP4Summary.read(fileAt: path) == MP4Summary(durationSeconds: 10, width: 1280, height: 720))

        // The same file cut inside the mdat, as a download that stopped would be.
        let cut = try #require(FileHandle(forWritingAtPath: path))
        try cut.truncate(atOffset: 1 << 30)
        try cut.close()
        #expect(throws: MP4Summary.ReadError.truncatedBox(type: "mdat", offset: MP4Fixture.ftyp.count)) { try MP4Summary.read(fileAt: path) }
    }

    @Test("a file cut anywhere is truncated, whether in the moov or in the mdat after it")
    func truncated() throws {
        let whole = MP4Fixture.ftyp + MP4Fixture.moov(MP4Fixture.mvhd(version: 0, timescale: 1000, duration: 1000), MP4Fixture.videoTrack)
            + MP4Fixture.box("mdat", [UInt8](repeating: 1, count: 64))
        #expect(try MP4Summary.read(whole).durationSeconds == 1)
        for length in [12, 40, MP4Fixture.ftyp.count + 60, whole.count - 70, whole.count - 1] {
            let error = #expect(throws: MP4Summary.ReadError.self) { try MP4Summary.read(Array(whole.prefix(length))) }
            guard case .truncatedBox? = error else {
                Issue.record("cut at \(length): \(String(describing: error)), not a truncated box")
                continue
            }
        }
        // An mvhd whose box is whole but too short to hold a duration.
        let stub = MP4Fixture.moov(MP4Fixture.box("mvhd", [0, 0, 0, 0, 1, 2]))
        #expect(throws: MP4Summary.ReadError.truncatedBox(type: "mvhd", offset: 8)) { try MP4Summary.read(stub) }
    }

    @Test("not an MP4, no moov, no mvhd and a missing file each say so")
    func refusals() throws {
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + [UInt8](repeating: 0, count: 40)
        #expect(throws: MP4Summary.ReadError.notMP4) { try MP4Summary.read(png) }
        #expect(throws: MP4Summary.ReadError.notMP4) { try MP4Summary.read(Array("<html><body>502 Bad Gateway</body></html>".utf8)) }
        #expect(throws: MP4Summary.ReadError.notMP4) { try MP4Summary.read([]) }
        #expect(throws: MP4Summary.ReadError.noMoov) { try MP4Summary.read(MP4Fixture.ftyp + MP4Fixture.box("mdat", [1, 2])) }
        #expect(throws: MP4Summary.ReadError.noMvhd) { try MP4Summary.read(MP4Fixture.ftyp + MP4Fixture.moov(MP4Fixture.videoTrack)) }
        #expect(throws: MP4Summary.ReadError.noMvhd) { try MP4Summary.read(MP4Fixture.moov(MP4Fixture.mvhd(version: 0, timescale: 0, duration: 5))) }
        let missing = "/nonexistent-\(UUID().uuidString)/video.mp4"
        let error = #expect(throws: MP4Summary.ReadError.self) { try MP4Summary.read(fileAt: missing) }
        guard case .unreadable(let path, _)? = error else {
            Issue.record("a missing file gave \(String(describing: error))")
            return
        }
        #expect(path == missing)
    }

    @Test("errors read as sentences an operator can act on")
    func descriptions() {
        #expect(MP4Summary.ReadError.notMP4.description == "not an MP4 file: it does not start with an MP4 box")
        #expect(MP4Summary.ReadError.noMoov.description.contains("no moov box"))
        #expect(MP4Summary.ReadError.noMvhd.description.contains("no usable mvhd"))
        #expect(MP4Summary.ReadError.truncatedBox(type: "mdat", offset: 32).description
            == "the MP4 is truncated: the mdat box at byte 32 runs past the end of what contains it")
    }
}
