import Foundation
import JobStore
import KlingCore

/// The runner at a glance, shared by systemd's STATUS line and `kling-batch status`.
public struct StatusSummary: Sendable, Equatable {
    public var counts: [JobState: Int]
    public var spending: Spending
    /// Why submission is paused (a refused key), if it is.
    public var pausedReason: String?
    /// The reason the oldest held job gives, if any are held.
    public var heldReason: String?

    /// Jobs being worked on: uploading, at fal, or downloading.
    public var running: Int {
        [.uploading, .submitting, .submitUnknown, .inQueue, .inProgress, .downloading].reduce(0) { $0 + counts[$1, default: 0] }
    }

    public init(store: any JobQueue, pausedReason: String? = nil, now: Date = Date()) async throws {
        counts = try await store.counts()
        spending = try await store.spending(now: now)
        self.pausedReason = pausedReason
        heldReason = counts[.held, default: 0] > 0 ? try await store.jobs(in: [.held]).first?.heldReason : nil
    }

    /// "3 running, 12 queued, 40 done today, $22.40 today", plus held and paused when they apply.
    public var line: String {
        var parts = ["\(running) running", "\(counts[.queued, default: 0]) queued"]
        if let held = counts[.held], held > 0 { parts.append("\(held) held for budget") }
        if let failed = counts[.failed], failed > 0 { parts.append("\(failed) failed") }
        parts.append("\(spending.completedToday) done today")
        parts.append("\(USD(micros: spending.todayMicros)) today")
        var text = parts.joined(separator: ", ")
        if let pausedReason { text += "; submission paused: \(pausedReason)" }
        return text
    }
}
