import FalClient
import Foundation
import KlingCore

/// Finds a submit whose answer was lost in fal's request listing, by its exact input.
///
/// Each lookup reads only the window in which that submit can have reached fal (`since` up to `window` later),
/// so the cost does not grow with the account's history, and a long-unresolved submit never pins the window in
/// the past where a recent request would go unseen (and be paid for twice). The listing comes newest first and a
/// lost answer is looked for at once, so the request is nearly always on the first page: reading stops there, and
/// only one page is held at a time. (Keeping whole windows of listings, inputs and all, grew a soak's memory by a
/// third.)
struct RequestFinder: Sendable {
    private let client: FalClient
    /// How long after a submit started its request can have been created (the 60 s submit timeout, with room).
    private let window: TimeInterval
    /// At most this many listing pages per look (100 requests each).
    private let maxPages: Int

    init(client: FalClient, window: TimeInterval = 180, maxPages: Int = 20) {
        self.client = client
        self.window = window
        self.maxPages = maxPages
    }

    /// The request sent at or after `since` whose input equals `input` and that `isKnown` does not claim for a job.
    func find(
        endpoint: FalEndpointID, input: JSONValue, since: Date, isKnown: (String) async throws -> Bool
    ) async throws -> ListedRequest? {
        var cursor: String?
        for _ in 0..<maxPages {
            let page = try await client.listRequests(
                endpoint: endpoint, since: since, until: since.addingTimeInterval(window), limit: 100, cursor: cursor, expandPayloads: true)
            for item in page.items where item.input == input && (item.sentAt.map { $0 >= since } ?? true) {
                if try await !isKnown(item.requestID) {
                    var found = item
                    found.output = nil
                    return found
                }
            }
            guard page.hasMore, let next = page.nextCursor else { return nil }
            cursor = next
        }
        return nil
    }
}
