import ArgumentParser
import Foundation
import Runner

/// `kling-batch notify`: the notification targets of the config file.
struct NotifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify",
        abstract: "Check the notify: targets of the config file.",
        subcommands: [NotifyTestCommand.self])
}

/// `kling-batch notify test`: a sample event to every target (or one), with what each answered.
struct NotifyTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Send a sample event to the notify: targets and say whether each took it.",
        discussion: """
            The sample (type notify.test) goes straight to each target, signed like a real event when the target \
            has a secret, whatever its events: filter says; nothing is written to the outbox. Exits 1 when a \
            target did not take it.

            Examples:
              kling-batch notify test
              kling-batch notify test --target 1 --config /etc/kling-batch/config.yaml
            """)

    @OptionGroup var store: StoreOptions
    @Option(help: "Send only to this target (0 is the first of the notify: list).")
    var target: Int?

    func run() async throws {
        let layers = try store.layers([:])
        let settings = try StoreOptions.settings(from: layers, simulate: store.simulate)
        var targets = settings.runner.notify
        guard !targets.isEmpty else {
            Console.error("no notify: targets in \(layers.filePath ?? "the config file (none found)"); see the README's Notifications section")
            throw ExitCode(1)
        }
        if let target {
            guard targets.indices.contains(target) else {
                Console.error("--target \(target): there are \(targets.count) targets, numbered from 0")
                throw ExitCode(1)
            }
            targets = [targets[target]]
        }
        var failed = false
        for result in await NotificationTest.send(to: targets) {
            if let failure = result.failure {
                failed = true
                Console.out("failed   \(result.label): \(failure)")
            } else {
                Console.out("ok       \(result.label)")
            }
        }
        if failed { throw ExitCode(1) }
    }
}
