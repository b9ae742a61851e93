import ArgumentParser
import Foundation
import JobStore
import KlingCore
import Runner

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

            Exit codes: 0 done; 1 a job did not complete, or a spec was invalid; 3 another kling-batch holds the \
            state folder; 4 the store or the drop folder cannot be used safely (deleted, replaced, damaged, a \
            symlink where a folder must be), see the message; 64 a usage error. `run --once` also exits 2 when a \
            spec was rejected and 5 when fal did not answer for give_up_after (see `kling-batch run --help`).

            Shell completions: kling-batch --generate-completion-script bash|zsh|fish
            """,
        version: KlingBatchVersion.current,
        subcommands: [
            ValidateCommand.self, PlanCommand.self, RunCommand.self, DaemonCommand.self, StatusCommand.self, ListCommand.self, ShowCommand.self,
            RetryCommand.self, CancelCommand.self, RerunCommand.self, PurgeCommand.self, ReportCommand.self, StoreCommand.self, ConfigCommand.self, NotifyCommand.self,
            ServeCommand.self,
        ]
    )

    /// Exit code 3: another runner holds the state folder.
    static let lockHeld = RunExit.locked.rawValue
    /// Exit code 4: the store or the drop folder cannot be used safely; the message says why and what to do.
    static let unsafeState = RunExit.unsafe.rawValue

    /// ArgumentParser's own `main`, with the errors that have an exit code of their own printed plainly.
    static func main() async {
        // Before anything else: the key may sit in this process's environment (FAL_KEY) from its first instruction,
        // and a key file is read later; other processes of the same user must not read either from /proc.
        if !KeyPrivacy.protect() {
            Console.error("warning: could not mark this process non-dumpable (prctl: \(String(cString: strerror(errno)))); other processes of this user may read its environment")
        }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if let code = exitCode(for: error) {
                Console.error("error: \(LogSafe.escape(String(describing: error)))")
                Foundation.exit(code)
            }
            exit(withError: error)
        }
    }

    static func exitCode(for error: any Error) -> Int32? {
        switch error {
        case is StateLock.Held, is DropFolderBusy: return lockHeld
        case is StoreLost, is DropFolderError: return unsafeState
        case let store as StoreError:
            switch store {
            case .refused, .corrupt, .newerSchema: return unsafeState
            default: return nil
            }
        default: return nil
        }
    }
}
