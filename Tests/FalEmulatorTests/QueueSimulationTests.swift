@testable import FalEmulator
import Foundation
import KlingCore
import Testing

/// The queue is simulated from timestamps, so these tests drive it with explicit times: exact and instant.
@Suite("Queue simulation")
struct QueueSimulationTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let app = "fal-ai/kling-video"
    let endpoint = "fal-ai/kling-video/o1/reference-to-video"

    func submit(_ state: EmulatorState, _ prompt: String, at time: Date, key: String = "k") async -> String? {
        let input: JSONValue = ["prompt": .string(prompt)]
        if case .created(let id, _) = await state.submit(endpoint: endpoint, app: app, key: key, body: input.canonicalData(), input: input, fault: nil, now: time) {
            return id
        }
        return nil
    }

    func phase(_ state: EmulatorState, _ id: String, at time: Date) async -> String? {
        await state.lookUp(app: app, id: id, now: time)?.phase.rawValue
    }

    @Test("the next queue event: a run's end or the head's start, never a queued request that has no slot (the webhook courier sleeps until it)")
    func nextQueueEvent() async throws {
        var configuration = EmulatorConfiguration()
        configuration.queueSeconds = 1
        configuration.runSeconds = 5
        configuration.runnerCapacity = 1
        let state = EmulatorState(configuration: configuration)
        _ = try #require(await submit(state, "a", at: t0))
        #expect(await state.nextQueueEvent(after: t0) == t0.addingTimeInterval(1), "the head may start at its eligibility")
        _ = try #require(await submit(state, "b", at: t0.addingTimeInterval(0.5)))
        await state.advance(to: t0.addingTimeInterval(3))
        // a runs until 6; b has been eligible since 1.5 but has no slot: the next event is a's end, not 'now'.
        #expect(await state.nextQueueEvent(after: t0.addingTimeInterval(3)) == t0.addingTimeInterval(6))
        await state.advance(to: t0.addingTimeInterval(6.5))
        #expect(await state.nextQueueEvent(after: t0.addingTimeInterval(6.5)) == t0.addingTimeInterval(11))
        await state.advance(to: t0.addingTimeInterval(12))
        #expect(await state.nextQueueEvent(after: t0.addingTimeInterval(12)) == t0.addingTimeInterval(72), "nothing left: a minute on")
    }

    @Test("queue time, then run time, then completed")
    func phases() async throws {
        var configuration = EmulatorConfiguration()
        configuration.queueSeconds = 2
        configuration.runSeconds = 5
        let state = EmulatorState(configuration: configuration)
        let id = try #require(await submit(state, "a", at: t0))
        #expect(await phase(state, id, at: t0.addingTimeInterval(1.9)) == "IN_QUEUE")
        #expect(await phase(state, id, at: t0.addingTimeInterval(2.1)) == "IN_PROGRESS")
        #expect(await phase(state, id, at: t0.addingTimeInterval(6.9)) == "IN_PROGRESS")
        #expect(await phase(state, id, at: t0.addingTimeInterval(7.0)) == "COMPLETED")
        let request = try #require(await state.lookUp(app: app, id: id, now: t0.addingTimeInterval(100)))
        #expect(request.startedAt == t0.addingTimeInterval(2))
        #expect(request.endedAt == t0.addingTimeInterval(7))
    }

    @Test("with one runner, requests run one after another even when nobody looks in between")
    func capacityWithoutPolling() async throws {
        var configuration = EmulatorConfiguration()
        configuration.runSeconds = 10
        configuration.runnerCapacity = 1
        let state = EmulatorState(configuration: configuration)
        var ids: [String] = []
        for index in 0..<3 { ids.append(try #require(await submit(state, "r\(index)", at: t0))) }
        #expect(await state.queuePosition(of: ids[2]) == 1)
        // Look only once, long after: the simulation replays every hand-over.
        let last = try #require(await state.lookUp(app: app, id: ids[2], now: t0.addingTimeInterval(35)))
        #expect(last.startedAt == t0.addingTimeInterval(20))
        #expect(last.endedAt == t0.addingTimeInterval(30))
        let counters = await state.counters()
        #expect(counters.maxRunningRequests == 1)
        #expect(counters.maxActiveRequests == 3)
        #expect(counters.requestsSucceeded == 3)
    }

    @Test("the per-key limit counts unfinished requests of that key only")
    func perKeyLimit() async throws {
        var configuration = EmulatorConfiguration()
        configuration.runSeconds = 10
        configuration.perKeyConcurrencyLimit = 2
        let state = EmulatorState(configuration: configuration)
        #expect(await submit(state, "1", at: t0) != nil)
        #expect(await submit(state, "2", at: t0) != nil)
        #expect(await submit(state, "3", at: t0) == nil)
        #expect(await submit(state, "x", at: t0, key: "other") != nil)
        #expect(await submit(state, "3", at: t0.addingTimeInterval(10)) != nil)
        let counters = await state.counters()
        #expect(counters.concurrencyRejections == 1)
        #expect(counters.maxActivePerKey == 2)
    }

    @Test("the same body twice counts as a duplicate submission")
    func duplicates() async throws {
        let state = EmulatorState()
        _ = await submit(state, "same", at: t0)
        _ = await submit(state, "same", at: t0)
        _ = await submit(state, "other", at: t0)
        let counters = await state.counters()
        #expect(counters.requestsCreated == 3)
        #expect(counters.duplicateSubmissions == 1)
        #expect(counters.submissionsPerBody.values.sorted() == [1, 2])
    }

    @Test("a cancelled request leaves the queue and frees its runner")
    func cancel() async throws {
        var configuration = EmulatorConfiguration()
        configuration.runSeconds = 10
        configuration.runnerCapacity = 1
        let state = EmulatorState(configuration: configuration)
        let first = try #require(await submit(state, "1", at: t0))
        let second = try #require(await submit(state, "2", at: t0))
        #expect(await state.cancel(app: app, id: first, now: t0.addingTimeInterval(3)) == true)
        #expect(await phase(state, second, at: t0.addingTimeInterval(3)) == "IN_PROGRESS")
        #expect(await state.lookUp(app: app, id: second, now: t0.addingTimeInterval(13))?.isFinished == true)
        #expect(await state.cancel(app: app, id: first, now: t0.addingTimeInterval(20)) == false)
        #expect(await state.cancel(app: "other/app", id: first, now: t0) == nil)
    }

    @Test("the model's input checks", arguments: [
        (["prompt": "ok"] as JSONValue, [String]()),
        ([:] as JSONValue, ["missing"]),
        (["prompt": "  "] as JSONValue, ["string_too_short"]),
        (["prompt": 5] as JSONValue, ["string_type"]),
        (["prompt": "x", "duration": 5] as JSONValue, ["enum"]),
        (["prompt": "x", "duration": "2"] as JSONValue, ["enum"]),
        (["prompt": "x", "aspect_ratio": "4:3"] as JSONValue, ["enum"]),
        (["prompt": "@Image2", "image_urls": ["https://a.example/1.png"]] as JSONValue, ["value_error"]),
        (["prompt": "@Element1 @Image1"] as JSONValue, ["value_error", "value_error"]),
        (["prompt": "x", "image_urls": "https://a.example/1.png"] as JSONValue, ["list_type"]),
        (["prompt": "x", "elements": [["reference_image_urls": []]]] as JSONValue, ["missing"]),
        (["prompt": "x", "image_urls": ["data:image/png;base64,AAAA", "data:text/plain;base64,AAAA", "ftp://x/y"]] as JSONValue, ["file_download_error", "file_download_error"]),
    ])
    func inputChecks(input: JSONValue, types: [String]) {
        let checker = ModelInputChecker(canFetch: { url in !url.hasPrefix("ftp") && !url.hasPrefix("data:text") })
        #expect(checker.issues(in: input).compactMap { $0["type"]?.stringValue } == types)
    }

    @Test("@ElementN references are read however they are placed")
    func references() {
        #expect(ModelInputChecker.references(to: "Element", in: "@Element1, @Element12 and @Element1.") == [1, 12])
        #expect(ModelInputChecker.references(to: "Image", in: "no refs; @Images are words") == [])
    }
}
