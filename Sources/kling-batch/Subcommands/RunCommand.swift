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
            Validates and accepts the given spec files, then submits every unfinished job in the store with \
            bounded concurrency, polls, downloads each video with its manifest, and prints a summary. Jobs still at \
            fal when it is stopped (Ctrl-C, SIGTERM) are picked up by the next run without being paid for twice. \
            The same spec content is not run twice unless --rerun is given. A full or read-only disk pauses the \
            run until it can write again; nothing is lost or paid twice.

            With no path, or with the jobs folder itself (jobs_dir), the jobs folder is a drop folder, exactly as \
            for the daemon: accepted files move to accepted/<date>/, rejected ones to rejected/ with their \
            .errors.txt, so a bad file is reported once and the next run is quiet. Spec files named by hand are \
            never moved. While fal does not answer, the run keeps trying for give_up_after (default 30m), then \
            exits 5 and leaves its jobs for the next run. For cron: --quiet prints nothing unless something needs \
            a look.

            Exit codes:
            \(RunExit.table)

            --simulate runs against an emulator started in this process, with its own store (the state folder's \
            simulate/ subfolder): simulated jobs and spend never mix with real ones.

            Examples:
              kling-batch run --once jobs/                  # against fal (needs FAL_KEY)
              kling-batch run --once --simulate jobs/       # the built-in emulator: no key
              kling-batch run --once --quiet                # cron: the jobs folder
              kling-batch run --once --out /srv/videos jobs/teasers.yaml
            """
    )

    @Flag(help: "Run until every job is finished, then exit (required; use `kling-batch daemon` to keep running).")
    var once = false

    @Flag(help: "Run spec files again even if the same content was accepted before.")
    var rerun = false

    @Flag(help: "Print the summary only when a job failed, a spec was rejected or fal did not answer (for cron).")
    var quiet = false

    @Argument(help: ArgumentHelp("Spec files or folders to accept before running.", valueName: "path"))
    var paths: [String] = []

    @OptionGroup var store: StoreOptions
    @OptionGroup var fal: FalOptions
    @OptionGroup var output: OutputTreeOptions
    @OptionGroup var runner: RunnerOptions
    @OptionGroup var spec: SpecOptions

    func validate() throws {
        guard once else {
            throw ValidationError("run needs --once (it runs until every job is finished); to keep running and watch the jobs folder, use `kling-batch daemon`")
        }
        if store.simulate && fal.falURL != nil { throw ValidationError("--simulate starts its own emulator; do not also give --fal-url") }
        if store.simulate && paths.isEmpty && runner.jobs == nil {
            // The configured jobs folder is the real one: a simulated run must not take (and move) real specs by default.
            throw ValidationError("--simulate with no path would take the real jobs folder; name the spec files or folder, or give --jobs")
        }
    }

    func run() async throws {
        var flags = fal.flags.merging(output.flags) { $1 }.merging(runner.flags) { $1 }.merging(spec.priceFlags) { $1 }
        // Quiet means quiet on stderr too: cron mails whatever a job prints.
        if quiet && runner.logLevel == nil { flags[.logLevel] = "warning" }
        let settings = try store.settings(flags)
        let logger = RunnerOptions.logger(settings)
        let (specPaths, dropFolder) = Self.split(paths, jobsFolder: settings.jobsDirectory)
        let (validator, rerun) = (spec.validator, self.rerun)
        let report = try await Simulation.withFal(settings, simulate: store.simulate, logger: logger) { settings in
            try await Simulation.withClient(settings, logger: logger) { client in
                try await RunOnce.run(
                    configuration: settings.runner, client: client, specPaths: specPaths, dropFolder: dropFolder, validator: validator, allowDuplicate: rerun,
                    logger: logger, signals: [.sigterm, .sigint], progress: Console.stderrIsTerminal ? Self.progressLine : nil)
            }
        }
        if !quiet || report.isNews {
            Console.out(report.summary)
            if !report.completed.isEmpty { Console.out("videos and manifests are in \(settings.runner.outputDirectory)") }
        }
        if report.exit != .done { throw ExitCode(report.exit.rawValue) }
    }

    /// The paths named by hand, and the jobs folder when it is to be taken as a drop folder: with no path at all,
    /// or when one of the paths is that folder.
    static func split(_ paths: [String], jobsFolder: String) -> (named: [String], dropFolder: String?) {
        let jobs = SpecFiles.realPath(jobsFolder)
        guard !paths.isEmpty else { return jobs == nil ? ([jobsFolder], nil) : ([], jobsFolder) }
        var named: [String] = []
        var dropFolder: String?
        for path in paths {
            if let jobs, SpecFiles.realPath(path) == jobs { dropFolder = jobsFolder } else { named.append(path) }
        }
        return (named, dropFolder)
    }

    @Sendable static func progressLine(_ environment: RunnerEnvironment, _ jobs: Set<Int64>) -> any Service {
        ProgressLine(environment: environment, jobs: jobs)
    }
}
