import FalClient
import Foundation
import KlingCore

/// Finds a submit whose answer was lost in fal's request listing, by its exact input.
///
/// Several jobs may be reconciling at once; the listing is fetched at most once per `minInterval` per
/// endpoint and shared between them.
actor RequestFinder {
    private let client: FalClient
    private let minInterval: Duration
    private var pages: [String: (fetched: ContinuousClock.Instant, since: Date, items: [ListedRequest])] = [:]
    /// At most this many listing pages per refresh (100 requests each).
    private let maxPages = 20

    init(client: FalClient, minInterval: Duration) {
        self.client = client
        self.minInterval = minInterval
    }

    /// The request sent at or after `since` whose input equals `input` and whose id is not in `excluding`.
    func find(endpoint: FalEndpointID, input: JSONValue, since: Date, excluding: Set<String>) async throws -> ListedRequest? {
        let now = ContinuousClock.now
        var entry = pages[endpoint.rawValue]
        if entry == nil || entry!.since > since || now - entry!.fetched >= minInterval {
            let start = min(since, entry?.since ?? since)
            var items: [ListedRequest] = []
            var cursor: String?
            for _ in 0..<maxPages {
                let page = try await client.listRequests(endpoint: endpoint, since: start, limit: 100, cursor: cursor, expandPayloads: true)
                items += page.items
                guard page.hasMore, let next = page.nextCursor else { break }
                cursor = next
            }
            entry = (now, start, items)
            pages[endpoint.rawValue] = entry
        }
        return entry!.items.first { item in
            item.input == input && !excluding.contains(item.requestID) && (item.sentAt.map { $0 >= since } ?? true)
        }
    }

    /// Forgets the cached listing so the next look asks fal again.
    func invalidate() { pages = [:] }
}
