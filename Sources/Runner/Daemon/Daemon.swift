import FalClient
import Foundation
import JobStore
import KlingSpec
import Logging
import ServiceLifecycle
import UnixSignals

/// `kling-batch daemon`: the dispatcher, the jobs-folder watcher, systemd status and signal handling under one
/// ServiceGroup. SIGTERM/SIGINT stop intake and submissions at once and leave everything at fal to the next start.
public struct Daemon: Sendable {
    public var layers: ConfigurationLayers
    public var settings: EffectiveSettings
    public var client: FalClient
    public var validator: SpecValidator
    public var logger: Logger
    public var notifier: SystemdNotifier
    /// Extra services, such as the metrics listener, run in the same group.
    public var extraServices: @Sendable (RunnerEnvironment) throws -> [any Service] = { _ in [] }
    /// How long graceful shutdown may take before executors are cancelled outright.
    public var drainLimit: Duration = .seconds(8)

    public init(layers: ConfigurationLayers, settings: EffectiveSettings, client: FalClient, validator: SpecValidator, logger: Logger,
                notifier: SystemdNotifier = SystemdNotifier()) {
        self.layers = layers
        self.settings = settings
        self.client = client
        self.validator = validator
        self.logger = logger
        self.notifier = notifier
    }

    /// Runs until SIGTERM or SIGINT. Throws `StateLock.Held` when another runner owns the state folder.
    public func run() async throws {
        let configuration = settings.runner
        let lock = try StateLock(stateDirectory: configuration.stateDirectory, purpose: "daemon")
        defer { withExtendedLifetime(lock) {} }
        let store = try JobStore.open(directory: configuration.stateDirectory, purpose: configuration.storePurpose)
        let environment = RunnerEnvironment(configuration: configuration, store: store, client: client, logger: logger)
        let ingestor = BatchIngestor(store: store, validator: validator, layout: environment.layout, prices: { environment.configuration.prices }, logger: logger)
        let notifier = self.notifier
        let dispatcher = Dispatcher(environment: environment, mode: .continuous)
        let watcher = SpecWatcher(folder: settings.jobsDirectory, ingestor: ingestor, environment: environment) {
            notifier.ready()
        }
        let reloader = Reloader(layers: layers, environment: environment, client: client, notifier: notifier)
        let signals = await SignalActions(reload: { await reloader.reload() }, wake: {
            environment.doorbell.ring()
            watcher.rescan()
        })
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: dispatcher), .init(service: watcher), .init(service: signals), .init(service: StoreGuard(store: store, environment: environment)),
            .init(service: NotificationSender(environment: environment, interval: .seconds(30))), .init(service: HookRunner(environment: environment)),
        ]
        if let posters = PosterMaker(setting: configuration.posters, store: store, layout: environment.layout, logger: logger, bell: environment.completionBell) {
            services.append(.init(service: posters))
        }
        services += try extraServices(environment).map { .init(service: $0) }
        // Last in the list, so it is the first told to stop: STOPPING=1 goes out before anything else winds down.
        services.append(.init(service: StatusReporter(environment: environment, notifier: notifier)))
        var group = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = drainLimit
        logger.notice("kling-batch daemon starting as runner \(RunnerIdentity.current): jobs \(settings.jobsDirectory), output \(configuration.outputDirectory), state \(configuration.stateDirectory), fal \(client.endpoints), concurrency \(configuration.concurrency)")
        do {
            try await ServiceGroup(configuration: group).run()
        } catch let lost as StoreLost {
            // Every part has stopped writing now: what the open connection still reads is complete.
            lost.rescue(store, logger: logger)
            throw lost
        }
        let counts = try store.counts()
        let atFal = JobState.atFal.reduce(0) { $0 + counts[$1, default: 0] }
        let downloading = counts[.downloading, default: 0]
        store.checkpointAtExit()
        logger.notice("stopped: \(atFal) request\(atFal == 1 ? "" : "s") at fal and \(downloading) download\(downloading == 1 ? "" : "s") are recorded and will be resumed at the next start")
    }
}

/// SIGHUP: read the config file again and apply what can change without a restart.
actor Reloader {
    private var layers: ConfigurationLayers
    private let environment: RunnerEnvironment
    private let client: FalClient
    private let notifier: SystemdNotifier

    init(layers: ConfigurationLayers, environment: RunnerEnvironment, client: FalClient, notifier: SystemdNotifier) {
        self.layers = layers
        self.environment = environment
        self.client = client
        self.notifier = notifier
    }

    func reload() async {
        notifier.reloading()
        defer { notifier.ready() }
        let logger = environment.logger
        do {
            let fresh = try layers.reloaded()
            let settings = try EffectiveSettings(fresh, processEnvironment: ProcessInfo.processInfo.environment)
            let key = try settings.resolveKey()
            let new = settings.runner
            let old = environment.configuration
            await environment.reload { current in
                current.concurrency = new.concurrency
                current.retry = new.retry
                current.polling = new.polling
                current.budget = new.budget
                current.prices = new.prices
                current.submitOptions = new.submitOptions
                current.settle = new.settle
                current.rescanInterval = new.rescanInterval
                current.reconcileGrace = new.reconcileGrace
                current.reconcileInterval = new.reconcileInterval
                current.minimumFreeStateBytes = new.minimumFreeStateBytes
                current.localRecheck = new.localRecheck
                current.notify = new.notify
                current.stallAfter = new.stallAfter
                current.notifyRetry = new.notifyRetry
                current.onComplete = new.onComplete
                current.hooks = new.hooks
                current.hookTimeout = new.hookTimeout
                current.hookRetry = new.hookRetry
                current.statusStream = new.statusStream
                current.streamSilence = new.streamSilence
            }
            client.replaceKey(key)
            await environment.gate.resume()
            layers = fresh
            var changes: [String] = []
            if old.concurrency != new.concurrency { changes.append("concurrency \(old.concurrency) → \(new.concurrency)") }
            if old.budget != new.budget { changes.append("budget per day \(old.budget.perDay.map { "\($0)" } ?? "none") → \(new.budget.perDay.map { "\($0)" } ?? "none"), per batch \(old.budget.perBatch.map { "\($0)" } ?? "none") → \(new.budget.perBatch.map { "\($0)" } ?? "none")") }
            if old.polling != new.polling { changes.append("polling") }
            if old.retry != new.retry { changes.append("retries") }
            if old.prices != new.prices { changes.append("prices \(new.prices.settingText)") }
            if old.submitOptions != new.submitOptions { changes.append("submit options \(new.submitOptions.recordJSON.canonicalString())") }
            logger.notice("reloaded the configuration\(changes.isEmpty ? " (no changes)" : ": " + changes.joined(separator: ", ")); submission resumed")
        } catch {
            logger.error("reload failed, keeping the current settings: \(error)")
        }
    }
}
