import ArgumentParser
import FalClient
import Foundation
import Hummingbird
import JobStore
import Logging
import Runner
import ServiceLifecycle

/// `kling-batch serve`: the review page for a store that no daemon serves (cron runs, or another host's copy).
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the review page: batches, a grid of each batch's videos, every job's details, live updates.",
        discussion: """
            Prints one URL that carries this install's token (kept in <state>/web-token, mode 0600). Opening it lets \
            that browser cancel, retry and rerun (the token then lives in an HttpOnly, SameSite=Strict cookie); \
            without it the page is read-only. It listens on 127.0.0.1 unless told otherwise, serves files only from \
            the output root and the store's known inputs, and never shows the key.

            A daemon with --http serves the same page; `serve --login-url` prints the URL that lets a browser act on it.

            Examples:
              kling-batch serve                       # http://127.0.0.1:9465/
              kling-batch serve --http 0.0.0.0:8080   # on every interface (put it behind a proxy with TLS)
              kling-batch serve --login-url --http 127.0.0.1:9464
            """
    )

    @Option(help: ArgumentHelp("Where to listen (default: the http setting, else 127.0.0.1:9465).", valueName: "host:port"))
    var http: String?

    @Flag(help: "Print the URL that lets a browser act (with the token) for the configured address, and exit.")
    var loginURL = false

    @OptionGroup var store: StoreOptions
    @OptionGroup var fal: FalOptions
    @OptionGroup var output: OutputTreeOptions
    @OptionGroup var spec: SpecOptions

    func run() async throws {
        let (store, settings) = try self.store.openStore(fal.flags.merging(output.flags) { $1 }.merging(spec.priceFlags) { $1 })
        guard let address = EffectiveSettings.parseAddress(http ?? settings.httpAddress.map { "\($0.host):\($0.port)" } ?? "127.0.0.1:9465") else {
            throw ValidationError("--http must be HOST:PORT such as 127.0.0.1:9465")
        }
        let token = try WebToken.load(stateDirectory: settings.runner.stateDirectory)
        let shown = address.host.contains(":") ? "[\(address.host)]" : address.host
        if loginURL {
            Console.out("http://\(shown):\(address.port)/login?token=\(token.value)")
            return
        }
        let logger = RunnerOptions.logger(settings)
        let layout = try await OutputLayout.forCommand(flag: output.out, configured: settings.runner.outputDirectory, store: store)
        let ingestor = BatchIngestor(store: store, validator: spec.validator, layout: layout, prices: settings.runner.prices)
        let stateDirectory = settings.runner.stateDirectory
        try await withOptionalClient(settings, logger: logger) { client in
            let actions = client.map { client in
                ReviewActions(
                    canceller: JobCanceller(store: store, client: client, layout: layout, prices: settings.runner.prices, logger: logger),
                    retrier: JobRetrier(store: store, queueOrigin: settings.endpoints.queueOrigin), ingestor: ingestor,
                    wake: { _ = StateLock.wakeDaemon(of: stateDirectory) })
            }
            let router = Router()
            ReviewSite(store: store, layout: layout, token: token, actions: actions, logger: logger).route(on: router)
            // Cron runs make posters as they finish; this catches what they left (a run killed, ffmpeg installed later).
            let posters = PosterMaker(setting: settings.runner.posters, store: store, layout: layout, logger: logger, interval: .seconds(5))
            try await serve(router, address: address, also: posters.map { [$0] } ?? [], logger: logger) { port in
                Console.out(actions == nil
                    ? "review page (read-only: no fal key, so nothing can be cancelled): http://\(shown):\(port)/"
                    : "review page: http://\(shown):\(port)/login?token=\(token.value)")
            }
        }
    }

    /// Runs `body` with a client when a key is found, else with none (the page is then read-only).
    private func withOptionalClient(_ settings: EffectiveSettings, logger: Logger, _ body: @Sendable (FalClient?) async throws -> Void) async throws {
        guard (try? FalOptions.key(settings)) != nil else { return try await body(nil) }
        try await Simulation.withClient(settings, logger: logger) { try await body($0) }
    }

    /// Listens until SIGINT or SIGTERM.
    private func serve(
        _ router: Router<BasicRequestContext>, address: (host: String, port: Int), also: [any Service], logger: Logger,
        listening: @escaping @Sendable (Int) -> Void
    ) async throws {
        var quiet = logger
        quiet.logLevel = .warning
        let application = Application(
            router: router, configuration: .init(address: .hostname(address.host, port: address.port), serverName: "kling-batch"),
            onServerRunning: { channel in listening(channel.localAddress?.port ?? address.port) }, logger: quiet)
        let group = ServiceGroup(configuration: .init(services: [application] + also, gracefulShutdownSignals: [.sigterm, .sigint], logger: quiet))
        try await group.run()
    }
}
