import Foundation
import Hummingbird
import JobStore
import KlingSpec
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import Synchronization

/// `/metrics` (Prometheus text), `/healthz` and fal's webhooks (at `webhook_url`'s path) for the daemon, on
/// loopback unless configured otherwise.
///
/// Counters and the fal latency histogram come from swift-metrics, bootstrapped here with swift-prometheus;
/// jobs by state and dollars committed are read from the store at each scrape, so they always match it.
public enum MetricsServer {
    private static let registry = PrometheusCollectorRegistry()
    private static let bootstrapped = Mutex(false)

    /// The listener as a service, or none when no address is configured. With `validator`, it also serves the
    /// review page (`ReviewSite`), whose buttons act through this runner.
    public static func services(settings: EffectiveSettings, environment: RunnerEnvironment, validator: SpecValidator? = nil) throws -> [any Service] {
        guard let address = settings.httpAddress else { return [] }
        bootstrap()
        let router = Router()
        if let validator { try review(settings: settings, environment: environment, validator: validator).route(on: router) }
        router.get("metrics") { _, _ -> Response in
            let text = try await scrape(environment)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.get("healthz") { _, _ -> Response in
            if let reason = await environment.gate.pausedReason {
                return Response(status: .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: "submission paused: \(reason)\n")))
            }
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
        }
        let logger = environment.logger
        if let url = environment.configuration.webhookURL { route(webhooksAt: url, on: router, environment: environment) }
        var quiet = logger
        quiet.logLevel = .warning
        let application = Application(
            router: router, configuration: .init(address: .hostname(address.host, port: address.port), serverName: "kling-batch"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? address.port
                let host = address.host.contains(":") ? "[\(address.host)]" : address.host
                logger.notice("metrics listening on http://\(host):\(port)/metrics (and /healthz)")
                if validator != nil {
                    logger.notice("review page on http://\(host):\(port)/ (read-only; `kling-batch serve --login-url` prints the URL that lets this browser act)")
                }
            },
            logger: quiet)
        return [application]
    }

    /// The review page of this runner's store; its actions ring this runner's doorbell.
    private static func review(settings: EffectiveSettings, environment: RunnerEnvironment, validator: SpecValidator) throws -> ReviewSite {
        let store = environment.store
        let actions = ReviewActions(
            canceller: JobCanceller(environment: environment), retrier: JobRetrier(store: store, queueOrigin: environment.origin),
            ingestor: BatchIngestor(store: store, validator: validator, layout: environment.layout, prices: { environment.configuration.prices }),
            wake: { environment.doorbell.ring() })
        let token = try WebToken.load(stateDirectory: settings.runner.stateDirectory)
        return ReviewSite(store: store, layout: environment.layout, token: token, actions: actions, logger: environment.logger, changes: environment.storeChanges)
    }

    /// Serves `POST <path of url>` for fal's webhooks; from then on submits ask fal for them.
    private static func route(webhooksAt url: URL, on router: Router<BasicRequestContext>, environment: RunnerEnvironment) {
        let keysURL = environment.configuration.webhookKeysURL ?? environment.client.endpoints.webhookKeys
        let endpoint = WebhookEndpoint(
            store: environment.store, inbox: environment.webhooks, keys: WebhookKeys(client: environment.client, url: keysURL),
            logger: environment.logger)
        router.post(RouterPath(url.path)) { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 4 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let answer = await endpoint.receive(headers: headers, body: Data(body.readableBytesView))
            return Response(
                status: .init(code: answer.status), headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: answer.text)))
        }
        environment.webhooks.startListening()
        environment.logger.notice("webhooks: fal is asked to POST to \(WebhookEndpoint.shown(url)); signatures checked with the keys at \(keysURL.absoluteString)")
    }

    /// Installs the Prometheus backend for swift-metrics, once per process.
    static func bootstrap() {
        let first = bootstrapped.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        guard first else { return }
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
        ]
        MetricsSystem.bootstrap(factory)
    }

    /// The registry's metrics plus gauges read from the store now.
    static func scrape(_ environment: RunnerEnvironment) async throws -> String {
        let counts = try await environment.store.counts()
        let spending = try await environment.store.spending()
        var text = "# HELP kling_batch_jobs Jobs in the store by state.\n# TYPE kling_batch_jobs gauge\n"
        for state in JobState.allCases { text += "kling_batch_jobs{state=\"\(state.label)\"} \(counts[state, default: 0])\n" }
        text += "# HELP kling_batch_spent_usd_total Dollars committed to fal (estimated), all time.\n# TYPE kling_batch_spent_usd_total counter\n"
        text += "kling_batch_spent_usd_total \(Double(spending.totalMicros) / 1_000_000)\n"
        text += "# HELP kling_batch_spent_today_usd Dollars committed to fal today (UTC).\n# TYPE kling_batch_spent_today_usd gauge\n"
        text += "kling_batch_spent_today_usd \(Double(spending.todayMicros) / 1_000_000)\n"
        text += "# HELP kling_batch_submission_paused 1 while submission is paused (a refused key).\n# TYPE kling_batch_submission_paused gauge\n"
        text += "kling_batch_submission_paused \(await environment.gate.pausedReason == nil ? 0 : 1)\n"
        text += "# HELP kling_batch_notifications_undelivered Events in the outbox some notify target has not received yet.\n# TYPE kling_batch_notifications_undelivered gauge\n"
        text += "kling_batch_notifications_undelivered \(try await environment.store.undeliveredNotifications())\n"
        let hooks = try await environment.store.hookCounts()
        text += "# HELP kling_batch_hooks Completed jobs by on_complete hook state (pending includes those retrying).\n# TYPE kling_batch_hooks gauge\n"
        for state in ["pending", "done", "failed"] { text += "kling_batch_hooks{state=\"\(state)\"} \(hooks[state, default: 0])\n" }
        return text + registry.emitToString()
    }
}
