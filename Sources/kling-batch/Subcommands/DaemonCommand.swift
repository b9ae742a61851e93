import ArgumentParser
import FalClient
import Foundation
import Logging
import Runner

/// `kling-batch daemon`: watch the jobs folder and run what is dropped into it, until stopped.
struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Watch the jobs folder and run every spec dropped into it, until stopped (for systemd).",
        discussion: """
            Picks up spec files moved or written into the jobs folder (inotify, plus a full rescan every 30 s), \
            validates each before any money is spent, and runs its jobs. Accepted files move to \
            <jobs>/accepted/<YYYY-MM-DD>/; rejected ones to <jobs>/rejected/ with <file>.errors.txt beside them. \
            The same content is not run twice (see `kling-batch rerun`). A file written in place is read once it \
            has kept its size for the settle time; write elsewhere and `mv` it in to have it read at once.

            SIGTERM or SIGINT: stop taking files and submitting, leave requests at fal to the next start, exit \
            within 10 s. SIGHUP: reload the config file (concurrency, budget, polling, key). Speaks systemd's \
            notify protocol when $NOTIFY_SOCKET is set.

            --simulate runs against fal's emulator, started in this process, with the simulated store.

            Examples:
              kling-batch daemon --jobs ~/videos/jobs --out ~/videos/out
              kling-batch daemon --simulate --jobs ./jobs
              kling-batch daemon --config /etc/kling-batch/config.yaml --http 127.0.0.1:9464
            """
    )

    @Option(name: .customLong("rescan-interval"), help: ArgumentHelp("Full rescan of the jobs folder besides inotify (default 30s).", valueName: "duration"))
    var rescanInterval: String?

    @Option(help: ArgumentHelp("Serve /metrics and /healthz on this address, e.g. 127.0.0.1:9464 (default: off).", valueName: "host:port"))
    var http: String?

    @OptionGroup var store: StoreOptions
    @OptionGroup var fal: FalOptions
    @OptionGroup var output: OutputTreeOptions
    @OptionGroup var runner: RunnerOptions
    @OptionGroup var spec: SpecOptions

    var flags: [SettingKey: String] {
        fal.flags.merging(output.flags) { $1 }.merging(runner.flags) { $1 }
            .merging([.rescanInterval: rescanInterval, .http: http].compactMapValues { $0 }) { $1 }.merging(spec.priceFlags) { $1 }
    }

    func validate() throws {
        if store.simulate && fal.falURL != nil { throw ValidationError("--simulate starts its own emulator; do not also give --fal-url") }
    }

    func run() async throws {
        // Until the signal handlers are installed, a SIGHUP or a CLI's SIGUSR1 must not kill the process.
        signal(SIGUSR1, SIG_IGN)
        signal(SIGHUP, SIG_IGN)
        let layers = try store.layers(flags)
        let settings = try StoreOptions.settings(from: layers, simulate: store.simulate)
        let logger = RunnerOptions.logger(settings)
        let (validator, simulate) = (spec.validator, store.simulate)
        // The lock held by another (exit 3), a lost store or an unsafe drop folder (exit 4): see KlingBatch.main.
        try await Simulation.withFal(settings, simulate: simulate, logger: logger) { settings in
            try await Simulation.withClient(settings, logger: logger) { client in
                var daemon = Daemon(layers: layers, settings: settings, client: client, validator: validator, logger: logger)
                daemon.extraServices = { environment in try MetricsServer.services(settings: settings, environment: environment, validator: validator) }
                if let webhook = settings.runner.webhookURL, settings.httpAddress == nil {
                    logger.warning("webhook_url \(webhook.host ?? "") is set but nothing listens for it (give --http); fal is not asked for webhooks")
                }
                try await daemon.run()
            }
        }
    }
}
