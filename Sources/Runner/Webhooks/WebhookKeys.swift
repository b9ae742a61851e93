import FalClient
import Foundation

/// fal's webhook keys, fetched once and kept for at most 24 hours as the protocol asks. A signature that no cached
/// key verifies fetches the set again (at most once a minute), so a key fal rotated in is picked up at once while a
/// stream of forgeries cannot turn into a stream of fetches. Callers at the same moment share one fetch, and a
/// failed fetch is not tried again for a minute.
actor WebhookKeys {
    private let fetch: @Sendable () async throws -> [FalWebhook.PublicKey]
    private let now: @Sendable () -> Date
    private var keys: [FalWebhook.PublicKey] = []
    private var fetchedAt: Date?
    private var lastAttempt: Date?
    private var lastFailure: (any Error)?
    private var inFlight: Task<[FalWebhook.PublicKey], any Error>?
    static let lifetime: TimeInterval = 24 * 3600
    static let refetchFloor: TimeInterval = 60

    init(fetch: @escaping @Sendable () async throws -> [FalWebhook.PublicKey], now: @escaping @Sendable () -> Date = Date.init) {
        self.fetch = fetch
        self.now = now
    }

    /// The keys from the client's key set URL.
    init(client: FalClient, url: URL) {
        self.init(fetch: { try await client.webhookKeys(from: url) })
    }

    /// The cached keys, fetched first when there are none or they are older than a day.
    func current() async throws -> [FalWebhook.PublicKey] {
        if let fetchedAt, now().timeIntervalSince(fetchedAt) < Self.lifetime { return keys }
        return try await load()
    }

    /// Fresh keys after a signature failed, or nil when the set was fetched less than a minute ago.
    func refreshed() async throws -> [FalWebhook.PublicKey]? {
        if inFlight == nil, let lastAttempt, now().timeIntervalSince(lastAttempt) < Self.refetchFloor { return nil }
        return try await load()
    }

    /// One fetch at a time; a failure is answered again for a minute without fetching.
    private func load() async throws -> [FalWebhook.PublicKey] {
        if let inFlight { return try await inFlight.value }
        if let lastFailure, let lastAttempt, now().timeIntervalSince(lastAttempt) < Self.refetchFloor { throw lastFailure }
        lastAttempt = now()
        let task = Task { [fetch] in try await fetch() }
        inFlight = task
        defer { inFlight = nil }
        do {
            let fetched = try await task.value
            keys = fetched
            fetchedAt = now()
            lastFailure = nil
            return fetched
        } catch {
            lastFailure = error
            throw error
        }
    }
}
