@testable import FalEmulator
import Foundation
import KlingCore
import Testing

@Suite("Route matching, ranges, fault rules")
struct RouteAndParsingTests {
    @Test("fal's overlapping paths resolve to the right call", arguments: [
        ("POST", "/fal-ai/kling-video/o1/reference-to-video", EmulatorRoute.submit(endpoint: "fal-ai/kling-video/o1/reference-to-video")),
        ("POST", "/fal-ai/flux", .submit(endpoint: "fal-ai/flux")),
        ("GET", "/fal-ai/kling-video/requests/abc/status", .status(app: "fal-ai/kling-video", requestID: "abc")),
        ("GET", "/fal-ai/kling-video/requests/abc/status/stream", .statusStream(app: "fal-ai/kling-video", requestID: "abc")),
        ("GET", "/fal-ai/kling-video/requests/abc", .result(app: "fal-ai/kling-video", requestID: "abc")),
        ("PUT", "/fal-ai/kling-video/requests/abc/cancel", .cancel(app: "fal-ai/kling-video", requestID: "abc")),
        ("POST", "/storage/upload/initiate", .uploadInitiate),
        ("PUT", "/_storage/upload/tok", .uploadPut(token: "tok")),
        ("GET", "/v1/models/requests/by-endpoint", .listRequests),
        ("GET", "/files/results/abc/output.mp4", .resultFile(requestID: "abc")),
        ("GET", "/files/uploads/tok/a.png", .uploadedFile(token: "tok")),
        ("GET", "/_emulator/counters", .admin(path: ["counters"])),
    ])
    func routes(method: String, path: String, expected: EmulatorRoute) {
        #expect(EmulatorRoute.match(method: method, path: path) == expected)
    }

    @Test("paths nothing at fal answers are not matched", arguments: [
        ("GET", "/"), ("GET", "/fal-ai"), ("DELETE", "/fal-ai/kling-video/requests/abc"), ("GET", "/fal-ai/kling-video/o1"),
        ("POST", "/v1/models/requests/by-endpoint"), ("GET", "/files/other/x/y"), ("PUT", "/fal-ai/kling-video/requests/abc/status"),
    ])
    func unmatched(method: String, path: String) {
        #expect(EmulatorRoute.match(method: method, path: path) == nil)
    }

    @Test("Range headers", arguments: [
        ("bytes=0-99", 1000, 0..<100), ("bytes=900-", 1000, 900..<1000), ("bytes=-100", 1000, 900..<1000),
        ("bytes=990-2000", 1000, 990..<1000), ("bytes=-5000", 1000, 0..<1000),
    ])
    func ranges(header: String, total: Int, expected: Range<Int>) {
        #expect(ByteRange(header)?.resolved(totalBytes: total) == expected)
    }

    @Test("unsatisfiable or unreadable ranges", arguments: ["bytes=1000-", "bytes=5-1", "bytes=-0", "bytes=a-b", "items=0-1", "bytes=0-1,5-9", "bytes=-"])
    func badRanges(header: String) {
        #expect(ByteRange(header)?.resolved(totalBytes: 1000) == nil)
    }

    @Test("a video's chunks cover any range exactly, and the padded file is the size asked for")
    func videoChunks() {
        let layout = VideoLayout(aspectRatio: "1:1", requestID: "r-1", requestedBytes: 300_000)
        #expect(layout.totalBytes == 300_000)
        var whole = [UInt8]()
        for chunk in layout.chunks(in: 0..<layout.totalBytes, chunkSize: 4096) { whole += layout.bytes(of: chunk).readableBytesView }
        #expect(whole.count == 300_000)
        for range in [0..<1, 100..<9000, 8000..<8100, 299_000..<300_000, 5..<5] {
            var part = [UInt8]()
            for chunk in layout.chunks(in: range, chunkSize: 777) { part += layout.bytes(of: chunk).readableBytesView }
            #expect(part == Array(whole[range]))
        }
        let small = VideoLayout(aspectRatio: "16:9", requestID: "r-2", requestedBytes: 10)
        #expect(small.totalBytes > VideoAsset.landscape.readableBytes)
        #expect(VideoLayout(aspectRatio: "16:9", requestID: "r-3", requestedBytes: nil).totalBytes == small.totalBytes)
    }

    @Test("fault rules parse from the CLI form and refuse nonsense")
    func faultRules() throws {
        #expect(try FaultRule(parsing: "503=0.1") == FaultRule(kind: .serverError503, probability: 0.1))
        #expect(try FaultRule(parsing: "reset=0.5@status,result") == FaultRule(kind: .connectionReset, probability: 0.5, routes: [.status, .result]))
        #expect(try FaultRule(parsing: "truncate=1#2") == FaultRule(kind: .truncatedDownload, probability: 1, limit: 2))
        #expect(try FaultRule(parsing: "truncate=1#2").description == "truncate=1.0#2")
        for bad in ["503", "bogus=0.1", "503=2", "503=x", "reset=0.1@nowhere", "drop-answer=0.1@status", "503=0.1#x"] {
            #expect(throws: FaultRuleError.self) { try FaultRule(parsing: bad) }
        }
    }

    @Test("the same seed gives the same faults; a limit stops a rule")
    func seededFaults() async {
        func sequence(seed: UInt64) async -> [FaultKind?] {
            var configuration = EmulatorConfiguration()
            configuration.seed = seed
            configuration.faults = [FaultRule(kind: .serverError503, probability: 0.3), FaultRule(kind: .rateLimit, probability: 0.3)]
            let state = EmulatorState(configuration: configuration)
            var drawn: [FaultKind?] = []
            for _ in 0..<200 { drawn.append(await state.drawFault(for: .status)) }
            return drawn
        }
        let first = await sequence(seed: 7)
        #expect(await sequence(seed: 7) == first)
        #expect(await sequence(seed: 8) != first)
        let fired = first.compactMap { $0 }.count
        #expect(fired > 60 && fired < 140)

        var limited = EmulatorConfiguration()
        limited.faults = [FaultRule(kind: .connectionReset, probability: 1, limit: 3)]
        let state = EmulatorState(configuration: limited)
        var resets = 0
        for _ in 0..<10 where await state.drawFault(for: .submit) == .connectionReset { resets += 1 }
        #expect(resets == 3)
        #expect(await state.drawFault(for: .admin) == nil)
    }
}
