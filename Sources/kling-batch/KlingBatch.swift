import ArgumentParser
import KlingCore

/// `kling-batch`: validates job specs, runs them through fal's Kling O1 reference-to-video queue, and operates the runner.
@main
struct KlingBatch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kling-batch",
        abstract: "Batch runner for fal.ai's Kling O1 reference-to-video model.",
        discussion: """
            Drop YAML job specs into a jobs folder; kling-batch validates them before any money is spent, \
            queues them durably, submits them to fal with bounded concurrency, and writes each finished MP4 \
            with a JSON manifest beside it.

            Start with:
              kling-batch validate jobs/          check specs, print every problem
              kling-batch plan jobs/              what would run and what it would cost
              kling-batch run --once jobs/        run them all, then exit
              kling-batch daemon                  keep watching the jobs folder
              kling-batch status                  what is running, what it cost

            Shell completions: kling-batch --generate-completion-script bash|zsh|fish
            """,
        version: KlingBatchVersion.current,
        subcommands: [
            ValidateCommand.self, PlanCommand.self, RunCommand.self, DaemonCommand.self, StatusCommand.self, ListCommand.self, ShowCommand.self,
            RetryCommand.self, CancelCommand.self, RerunCommand.self, PurgeCommand.self, ConfigCommand.self,
        ]
    )
}
