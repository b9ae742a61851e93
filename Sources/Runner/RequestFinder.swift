import FalClient
import Foundation
import KlingCore

/// Finds a submit whose answer was lost in fal's request listing, by its exact input.
///
/// Each lookup reads only the window in which that submit can have reached fal (`since` up to `window` later),
/// so the cost does not grow with the account's history, and a long-unresolved submit never pins the window in
/// the past where a recent request would go unseen (and be paid for twice). Jobs whose submits started at the
/// same moment share one read; each window is read at most once per `minInterval`.
actor RequestFinder {
    private struct Listing {
        var fetched: ContinuousClock.Instant
        var items: [ListedRequest]
    }

    private let client: FalClient
    private let minInterval: Duration
    /// How long after a submit started its request can have been created (the 60 s submit timeout, with room).
    private let window: TimeInterval
    private var listings: [String: Listing] = [:]
    /// At most this many listing pages per read (100 requests each).
    private let maxPages = 20

    init(client: FalClient, minInterval: Duration, window: TimeInterval = 180) {
        self.client = client
        self.minInterval = minInterval
        self.window = window
    }

    /// The request sent at or after `since` whose input equals `input` and whose id is not in `excluding`.
    func find(endpoint: FalEndpointID, input: JSONValue, since: Date, excluding: Set<String>) async throws -> ListedRequest? {
        let now = ContinuousClock.now
        let key = "\(endpoint.rawValue) \(since.timeIntervalSince1970)"
        // A listing is only reused within `minInterval`; keeping older ones would only hold memory (a soak with
        // hundreds of lost answers grew by 40 KB per job before this).
        listings = listings.filter { now - $0.value.fetched < minInterval }
        var listing = listings[key]
        if listing == nil || now - listing!.fetched >= minInterval {
            var items: [ListedRequest] = []
            var cursor: String?
            for _ in 0..<maxPages {
                let page = try await client.listRequests(
                    endpoint: endpoint, since: since, until: since.addingTimeInterval(window), limit: 100, cursor: cursor, expandPayloads: true)
                // Only what matching needs: outputs (video URLs, timings) can be large and are never looked at.
                items += page.items.map { item in
                    var slim = item
                    slim.output = nil
                    return slim
                }
                guard page.hasMore, let next = page.nextCursor else { break }
                cursor = next
            }
            listing = Listing(fetched: now, items: items)
            listings[key] = listing
        }
        return listing!.items.first { item in
            item.input == input && !excluding.contains(item.requestID) && (item.sentAt.map { $0 >= since } ?? true)
        }
    }

    /// Forgets the cached listings so the next look asks fal again.
    func invalidate() { listings = [:] }
}
