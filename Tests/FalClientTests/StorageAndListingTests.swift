import AsyncHTTPClient
import FalClient
import FalEmulator
import Foundation
import KlingCore
import Testing
import TestSupport

@Suite("Storage upload and request listing")
struct StorageAndListingTests {
    @Test("upload initiates, PUTs the bytes, and the file URL serves them")
    func upload() async throws {
        try await EmulatorHarness.run { harness in
            let bytes = Data((0..<5000).map { UInt8($0 % 251) })
            let url = try await harness.client.upload(bytes, fileName: "hero front.png", contentType: "image/png")
            #expect(url.path.hasPrefix("/files/uploads/"))
            #expect(url.lastPathComponent == "hero_front.png")
            let response = try await harness.http.execute(.init(url: url.absoluteString), timeout: .seconds(10))
            #expect(response.status == .ok)
            #expect(response.headers.first(name: "content-type") == "image/png")
            let body = try await response.body.collect(upTo: 1 << 20)
            #expect(Data(body.readableBytesView) == bytes)
            let counters = await harness.emulator.state.counters()
            #expect(counters.uploadInitiations == 1)
            #expect(counters.uploadPuts == 1)
            #expect(counters.uploadBytes == 5000)
        }
    }

    @Test("an uploaded URL passes the model's fetch check; an unknown one fails it")
    func uploadedURLIsFetchable() async throws {
        try await EmulatorHarness.run { harness in
            let url = try await harness.client.upload(Data([1, 2, 3]), fileName: "a.png", contentType: "image/png")
            let good: JSONValue = ["prompt": "@Image1 at dusk", "image_urls": [.string(url.absoluteString)]]
            let ok = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: good)
            _ = try await harness.waitUntilCompleted(ok.handle)
            _ = try await harness.client.result(ok.handle)

            let missing = harness.baseURL.appendingPathComponent("files/uploads/no-such-token/a.png").absoluteString
            let bad: JSONValue = ["prompt": "@Image1 at dusk", "image_urls": [.string(missing)]]
            let failing = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: bad)
            _ = try await harness.waitUntilCompleted(failing.handle)
            let error = await #expect(throws: FalError.self) { try await harness.client.result(failing.handle) }
            guard case .validation(let issues)? = error?.kind else { Issue.record("expected validation"); return }
            #expect(issues.map(\.fieldPath) == ["image_urls[0]"])
            #expect(issues.first?.type == "file_download_error")
        }
    }

    @Test("the listing shows ended requests with their exact input, newest first, in pages")
    func listing() async throws {
        try await EmulatorHarness.run { harness in
            let since = Date().addingTimeInterval(-1)
            var handles: [FalRequestHandle] = []
            for index in 0..<3 {
                let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: input("listing \(index)"))
                handles.append(receipt.handle)
            }
            for handle in handles { _ = try await harness.waitUntilCompleted(handle) }

            let first = try await harness.client.listRequests(endpoint: .klingO1ReferenceToVideo, since: since, limit: 2)
            #expect(first.items.count == 2)
            #expect(first.hasMore)
            #expect(first.items.map(\.requestID) == [handles[2].requestID, handles[1].requestID])
            #expect(first.items[0].input == input("listing 2"))
            #expect(first.items[0].statusCode == 200)
            #expect(first.items[0].output?["video"]?["url"] != nil)
            let second = try await harness.client.listRequests(
                endpoint: .klingO1ReferenceToVideo, since: since, limit: 2, cursor: first.nextCursor)
            #expect(second.items.map(\.requestID) == [handles[0].requestID])
            #expect(!second.hasMore)

            let byID = try await harness.client.listRequests(
                endpoint: .klingO1ReferenceToVideo, since: since, requestID: handles[1].requestID)
            #expect(byID.items.map(\.requestID) == [handles[1].requestID])

            let later = try await harness.client.listRequests(endpoint: .klingO1ReferenceToVideo, since: Date().addingTimeInterval(60))
            #expect(later.items.isEmpty)
            let withoutPayloads = try await harness.client.listRequests(
                endpoint: .klingO1ReferenceToVideo, since: since, expandPayloads: false)
            #expect(withoutPayloads.items.allSatisfy { $0.input == nil })
        }
    }

    @Test("requests that have not ended are listed only when the knob says so")
    func listingUnfinished() async throws {
        try await EmulatorHarness.run(configure: { $0.holdRequests = true }) { harness in
            let since = Date().addingTimeInterval(-1)
            _ = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput)
            #expect(try await harness.client.listRequests(endpoint: .klingO1ReferenceToVideo, since: since).items.isEmpty)
            await harness.emulator.state.configure { $0.listingShowsUnfinished = true }
            let listed = try await harness.client.listRequests(endpoint: .klingO1ReferenceToVideo, since: since)
            #expect(listed.items.count == 1)
            #expect(listed.items[0].statusCode == nil)
        }
    }

    @Test("another key's requests are not listed")
    func listingIsPerKey() async throws {
        try await EmulatorHarness.run { harness in
            let since = Date().addingTimeInterval(-1)
            let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: sampleInput)
            _ = try await harness.waitUntilCompleted(receipt.handle)
            let other = FalClient(
                http: harness.http, endpoints: .init(baseURL: harness.baseURL), key: FalKey("someone-else", source: "test")!,
                logger: harness.client.logger)
            #expect(try await other.listRequests(endpoint: .klingO1ReferenceToVideo, since: since).items.isEmpty)
        }
    }
}
