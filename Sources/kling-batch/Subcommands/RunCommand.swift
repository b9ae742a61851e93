import ArgumentParser
import FalClient
import FalEmulator
import Foundation
import KlingCore
import KlingSpec
import Logging
import Runner
import ServiceLifecycle

/// `kling-batch run --once`: accept specs, run every unfinished job to its end, print a summary.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Accept spec files and run every job to its end, then exit (for cron and by hand).",
        discussion: """
            Validates and accepts the given spec files (or the jobs folder), then submits every unfinished job in \
            the store with bounded concurrency, polls, downloads each video with its manifest, and prints a \
            summary. Exits 0 when every job completed, 1 otherwise (3: another runner holds the state folder; 4: \
            the store cannot be used safely). Jobs still at fal when it is stopped (Ctrl-C, SIGTERM) are picked up \
            by the next run without being paid for twice. The same spec content is not run twice unless --rerun is \
            given. A full or read-only disk pauses the run until it can write again; nothing is lost or paid twice.

            --simulate runs against an emulator started in this process, with its own store (the state folder's \
            simulate/ subfolder): simulated jobs and spend never mix with real ones.

            Examples:
              kling-batch run --once jobs/                       # against fal (needs FAL_KEY)
              kling-batch run --once --simulate jobs/            # against the built-in emulator: no key, no network
              kling-batch run --once --concurrency 8 --out /srv/videos jobs/teasers.yaml
            """
    )

    @Flag(help: "Run until every job is finished, then exit (required; use `kling-batch daemon` to keep running).")
    var once = false

    @Flag(help: "Start fal's emulator in this process and run against it: no key and no network needed.")
    var simulate = false

    @Flag(help: "Run spec files again even if the same content was accepted before.")
    var rerun = false

    @Argument(help: ArgumentHelp("Spec files or folders to accept before running.", valueName: "path"))
    var paths: [String] = []

    @OptionGroup var runner: RunnerOptions
    @OptionGroup var spec: SpecOptions

    func validate() throws {
        guard once else {
            throw ValidationError("run needs --once (it runs until every job is finished); to keep running and watch the jobs folder, use `kling-batch daemon`")
        }
        if simulate && runner.falURL != nil { throw ValidationError("--simulate starts its own emulator; do not also give --fal-url") }
    }

    func run() async throws {
        let settings = try runner.settings(extra: [.pricePerSecond: spec.rate].compactMapValues { $0 })
        let configuration = settings.runner
        let logger = RunnerOptions.logger(settings)
        let specPaths = paths.isEmpty ? [settings.jobsDirectory] : paths
        let report: RunReport
        if simulate {
            var emulatorLogger = logger
            emulatorLogger.logLevel = .warning
            var knobs = EmulatorConfiguration()
            knobs.queueSeconds = 0.5
            knobs.runSeconds = 2
            knobs.runnerCapacity = 8
            let emulator = FalEmulator(configuration: knobs, logger: emulatorLogger)
            var simulated = settings
            simulated.simulate()
            report = try await emulator.withRunning { [simulated] url in
                logger.notice("simulating: fal's emulator is listening at \(url.absoluteString); no key or network is used; store \(simulated.runner.stateDirectory)")
                var local = simulated
                local.endpoints = FalEndpoints(baseURL: url)
                return try await execute(local, logger: logger, specPaths: specPaths)
            }
        } else {
            report = try await execute(settings, logger: logger, specPaths: specPaths)
        }
        Console.out(report.summary)
        Console.out("videos and manifests are in \(configuration.outputDirectory)")
        if !report.succeeded { throw ExitCode(1) }
    }

    @Sendable static func progressLine(_ environment: RunnerEnvironment, _ jobs: Set<Int64>) -> any Service {
        ProgressLine(environment: environment, jobs: jobs)
    }

    private func execute(_ settings: EffectiveSettings, logger: Logger, specPaths: [String]) async throws -> RunReport {
        let key = try RunnerOptions.key(settings)
        let http = FalClient.makeHTTPClient()
        let client = FalClient(http: http, endpoints: settings.endpoints, key: key, logger: logger)
        do {
            let report = try await RunOnce.run(
                configuration: settings.runner, client: client, specPaths: specPaths, validator: spec.validator, allowDuplicate: rerun,
                logger: logger, signals: [.sigterm, .sigint],
                progress: Console.stderrIsTerminal ? Self.progressLine : nil)
            try await http.shutdown()
            return report
        } catch {
            try? await http.shutdown()
            throw error
        }
    }
}
