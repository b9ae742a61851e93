import FalClient
import FalEmulator
import Foundation
import KlingCore
import Testing
import TestSupport

/// fal's status stream: the event-stream parser on its own, and the client against the emulator.
@Suite("Status stream", .timeLimit(.minutes(3)))
struct StatusStreamTests {
    static let text = ": a comment\r\nevent: status\r\ndata: {\"status\":\r\ndata:  \"IN_QUEUE\"}\r\nid: 1\r\n\r\ndata: second\n\ndata: é third\rretry: 5\r\rdata: unfinished"

    @Test("events cut at every byte come out the same: CRLF, CR and LF, multi-line data, comments, event and id fields")
    func parser() {
        let bytes = Array(Self.text.utf8)
        var whole = SSEParser()
        let expected = whole.feed(bytes)
        #expect(expected == [
            SSEParser.Event(type: "status", data: "{\"status\":\n \"IN_QUEUE\"}", id: "1"),
            SSEParser.Event(data: "second", id: "1"),
            SSEParser.Event(data: "é third", id: "1"),
        ])
        for cut in 1..<bytes.count {
            var parser = SSEParser()
            let events = parser.feed(bytes[..<cut]) + parser.feed(bytes[cut...])
            #expect(events == expected, "cut at byte \(cut)")
        }
        var single = SSEParser()
        #expect(bytes.flatMap { single.feed([$0]) } == expected, "one byte at a time")
    }

    @Test("the client yields the statuses in order and ends after COMPLETED")
    func inOrder() async throws {
        // Held in the queue until the stream has said IN_QUEUE, then released: the test follows events, not the clock.
        try await EmulatorHarness.run(configure: { $0.runSeconds = 0.3; $0.holdRequests = true }) { harness in
            let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: input("streamed"))
            var states: [String] = []
            for try await status in harness.client.statusStream(receipt.handle) {
                switch status.state {
                case .inQueue:
                    if states.last != "IN_QUEUE" {
                        states.append("IN_QUEUE")
                        _ = await harness.emulator.state.releaseHeldRequests()
                    }
                case .inProgress: if states.last != "IN_PROGRESS" { states.append("IN_PROGRESS") }
                case .completed(let error, _):
                    #expect(error == nil)
                    states.append("COMPLETED")
                }
            }
            #expect(states == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"])
            let counters = await harness.emulator.state.counters()
            #expect(counters.statusStreams == 1 && counters.statusPolls == 0)
        }
    }

    @Test("a server that keeps the stream open after COMPLETED: the consumer ends at COMPLETED, the client goes on reading (so a stream that ends is reused), then closes it at its drain limit")
    func lingering() async throws {
        var timeouts = FalClient.Timeouts()
        // Long enough for a few comments however late the emulator's in-process sender gets a thread.
        timeouts.streamDrain = .seconds(10)
        let configure: @Sendable (inout EmulatorConfiguration) -> Void = {
            $0.runSeconds = 0.2
            $0.streamIntervalSeconds = 0.05
            $0.faults = [FaultRule(kind: .streamLinger, probability: 1)]
        }
        try await EmulatorHarness.run(configure: configure, timeouts: timeouts) { harness in
            let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: input("linger"))
            var last: RequestStatus?
            for try await status in harness.client.statusStream(receipt.handle) { last = status }
            guard case .completed? = last?.state else {
                Issue.record("the stream ended without COMPLETED: \(String(describing: last))")
                return
            }
            // Still read after COMPLETED: comments keep going out until the stream closes (one cancelled at COMPLETED
            // takes at most two). No deadline of ours: the drain limit ends the stream, the time limit a hang.
            let counters = harness.emulator.state
            var (read, open) = (0, 1)
            while read < 3 && open > 0 {
                try await Task.sleep(for: .milliseconds(20))
                (read, open) = await { let now = await counters.counters(); return (now.streamLingerComments, now.statusStreamsOpen) }()
            }
            #expect(read >= 3, "the client stopped reading at COMPLETED")
            // The emulator never ends a lingering stream: only the client's drain limit closes it.
            while open > 0 {
                try await Task.sleep(for: .milliseconds(20))
                open = await counters.counters().statusStreamsOpen
            }
        }
    }

    @Test("a stream cut before COMPLETED throws, so the caller can fall back to polling")
    func cut() async throws {
        // Held in the queue, the request cannot finish before the stream is read, however late this test gets a thread.
        try await EmulatorHarness.run(configure: { $0.holdRequests = true; $0.faults = [FaultRule(kind: .streamCut, probability: 1)] }) { harness in
            let receipt = try await harness.client.submit(endpoint: .klingO1ReferenceToVideo, input: input("cut"))
            var seen = 0
            await #expect(throws: FalClient.StreamEnded.self) {
                for try await _ in harness.client.statusStream(receipt.handle) { seen += 1 }
            }
            #expect(seen == 1)
        }
    }
}
