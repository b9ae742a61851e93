import ArgumentParser
import Foundation
import JobStore
import Runner

/// `kling-batch store`: look after the job store itself.
struct StoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Check the job store, start a new one on purpose, or give up on requests at a server that is gone.",
        subcommands: [StoreCheckCommand.self, StoreResetCommand.self, StoreAbandonCommand.self]
    )
}

/// `kling-batch store check`: SQLite's integrity check and the store's own invariants.
struct StoreCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Run SQLite's integrity check and kling-batch's own invariants on the store; exit 1 if anything is wrong.",
        discussion: """
            Safe while the daemon runs. Reports the store's identity, whether the file is the one this state folder \
            was made with, copies saved by a runner that saw its store vanish, and every job that breaks a rule \
            (at fal without a request id, completed without its video, a request owned twice…).
            """
    )

    @OptionGroup var store: StoreOptions

    func run() throws {
        let (store, settings) = try self.store.openStore()
        let report = try store.check()
        Console.out("store: \(store.path)")
        Console.out("identity: \(store.identity)")
        Console.out("jobs: \(report.jobs); spend ledger rows: \(report.ledgerRows)")
        let holder = StateLock.holder(of: settings.runner.stateDirectory)
        Console.out(holder.map { "runner: \($0.purpose) (pid \($0.pid))" } ?? "runner: none")
        for note in report.notes { Console.out("note: \(note)") }
        for problem in report.problems { Console.out("problem: \(problem)") }
        if report.isHealthy {
            Console.out("ok: the store passes SQLite's integrity check and every invariant")
        } else {
            Console.out("\(report.problems.count) problem\(report.problems.count == 1 ? "" : "s") found")
            throw ExitCode(1)
        }
    }
}

/// `kling-batch store reset`: start an empty store on purpose.
struct StoreResetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset",
        abstract: "Move the current store aside and let the next run start an empty one (needs --yes).",
        discussion: """
            For when a store was lost or replaced and cannot be restored. The database files are renamed to \
            kling-batch.sqlite.reset-<time> (nothing is deleted), and the folder's store marker is removed. Jobs and \
            requests the old store knew are forgotten: requests still at fal will not be picked up, and the same \
            specs would be paid for again. Refuses while a runner holds the state folder.
            """
    )

    @Flag(help: "Yes, forget the current store's jobs.")
    var yes = false

    @OptionGroup var store: StoreOptions

    func validate() throws {
        if !yes { throw ValidationError("store reset forgets every job and every request at fal that the store knew; give --yes to do it") }
    }

    func run() throws {
        let directory = try store.settings().runner.stateDirectory
        let lock = try StateLock(stateDirectory: directory, purpose: "store reset")
        defer { withExtendedLifetime(lock) {} }
        let moved = try JobStore.reset(directory: directory)
        for path in moved { Console.out("moved aside: \(path)") }
        Console.out(moved.isEmpty ? "no store files were there; the next run starts an empty store" : "the next run starts an empty store in \(directory)")
    }
}

/// `kling-batch store abandon ORIGIN`: give up on requests at a server this store no longer uses.
struct StoreAbandonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abandon",
        abstract: "Fail every unfinished job whose request went to ORIGIN (an emulator that is gone, say).",
        discussion: """
            A runner never sends the key, or anything else, to an origin other than the one it is configured for, \
            so jobs whose requests went elsewhere wait untouched. When that server is gone for good, this marks \
            them failed; `kling-batch retry --resubmit` then submits them again (a new, paid submission each).

            Example:
              kling-batch store abandon http://127.0.0.1:43117
            """
    )

    @Argument(help: ArgumentHelp("The origin, as the runner's warning names it (scheme://host:port).", valueName: "origin"))
    var origin: String

    @OptionGroup var store: StoreOptions

    func run() throws {
        let (store, settings) = try self.store.openStore()
        let abandoned = try store.abandon(origin: origin)
        let resolver = try JobResolver(store: store)
        for job in abandoned { Console.out("abandoned \(resolver.name(job)) (its request \(job.requestId ?? "?") was at \(origin))") }
        Console.out(abandoned.isEmpty ? "no unfinished job's request went to \(origin)" : "retry them with: kling-batch retry --failed --resubmit")
        if !abandoned.isEmpty, let pid = StateLock.wakeDaemon(of: settings.runner.stateDirectory) { Console.out("told the daemon (pid \(pid))") }
    }
}
