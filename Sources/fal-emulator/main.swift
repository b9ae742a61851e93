import ArgumentParser
import FalEmulator
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import ServiceLifecycle

/// `fal-emulator`: fal's queue, storage, platform API and file hosts on one loopback port, for tests and demos.
@main
struct FalEmulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fal-emulator",
        abstract: "Run a fault-injecting emulator of fal's queue, storage and file hosts.",
        discussion: """
            Prints `LISTENING http://HOST:PORT` as its first line once it accepts connections, then serves until \
            SIGINT or SIGTERM. Point kling-batch at it with `--fal-url http://HOST:PORT`.

            Faults are KIND=PROBABILITY[@CALL,CALL…][#LIMIT]. Kinds: \(FaultKind.allCases.map(\.rawValue).joined(separator: ", ")). \
            Calls: \(EmulatorRouteKind.allCases.filter { $0 != .admin && $0 != .webhookKeys }.map(\.rawValue).joined(separator: ", ")).

            Admin calls (never faulted): GET /_emulator/counters, GET|PUT /_emulator/config, \
            POST /_emulator/release, GET /_emulator/requests, GET /_emulator/jwks.json.

            Webhooks: a submit with ?fal_webhook=URL gets a signed POST there when its request ends, retried until \
            answered 2xx; the signing key is published at /.well-known/jwks.json (and /_emulator/jwks.json).

            Example:
              fal-emulator --port 0 --run-seconds 5 --capacity 4 --fault 503=0.1 --fault reset=0.05@status
            """
    )

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on; 0 picks a free one.") var port = 0
    @Option(help: "Seconds each request spends IN_QUEUE at least.") var queueSeconds: Double?
    @Option(help: "Seconds each request spends IN_PROGRESS.") var runSeconds: Double?
    @Option(help: "Requests that run at once (default: unlimited).") var capacity: Int?
    @Option(help: "Unfinished requests one key may have before submits answer 429.") var perKeyLimit: Int?
    @Option(help: "Size in bytes of each result video (padded, still playable).") var videoBytes: Int?
    @Option(help: "Where the model's input checks answer: submit or result.") var validateAt: String?
    @Option(help: "Seconds of Retry-After on each 429.") var retryAfter: Double?
    @Option(help: "Seconds a 'slow' fault delays an answer.") var slowSeconds: Double?
    @Option(help: "Times a webhook is tried until its receiver answers 2xx (default 10).") var webhookAttempts: Int?
    @Option(help: "Seconds before a webhook's first retry; doubles up to 60 (default 0.5).") var webhookRetrySeconds: Double?
    @Option(help: "Probability (0-1) that a request's video plays 2 s more or less than its duration, on purpose.")
    var wrongDuration: Double?
    @Option(help: "Seed of the fault decisions.") var seed: UInt64?
    @Option(name: .customLong("fault"), help: "A fault rule KIND=PROBABILITY[@CALL,…][#LIMIT]; repeatable.") var faults: [String] = []
    @Option(name: .customLong("accept-key"), help: "Accept only this key (repeatable); default: any key.") var acceptedKeys: [String] = []
    @Option(help: "A JSON file of knobs (as GET /_emulator/config prints them); flags override it.") var config: String?
    @Flag(help: "Keep new requests IN_QUEUE until POST /_emulator/release.") var hold = false
    @Flag(help: "Create each submitted request, then hold its answer until POST /_emulator/release-answers.") var holdAnswers = false
    @Option(help: "Put this base URL in answers' status/response/cancel URLs instead of the emulator's own.") var answerBaseUrl: String?
    @Flag(help: "List requests that have not ended yet in the request listing.") var listUnfinished = false
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "notice"

    func validate() throws {
        if let validateAt, EmulatorConfiguration.ValidationPoint(rawValue: validateAt) == nil {
            throw ValidationError("--validate-at must be submit or result")
        }
        for rule in faults { _ = try FaultRule(parsing: rule) }
        if let wrongDuration, !(0...1).contains(wrongDuration) { throw ValidationError("--wrong-duration must be a probability from 0 to 1") }
        if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error") }
    }

    func run() async throws {
        var configuration = EmulatorConfiguration()
        if let config {
            let data = try Data(contentsOf: URL(fileURLWithPath: config))
            configuration = try JSONDecoder().decode(EmulatorConfiguration.self, from: data)
        }
        if let queueSeconds { configuration.queueSeconds = queueSeconds }
        if let runSeconds { configuration.runSeconds = runSeconds }
        if let capacity { configuration.runnerCapacity = capacity }
        if let perKeyLimit { configuration.perKeyConcurrencyLimit = perKeyLimit }
        if let videoBytes { configuration.videoBytes = videoBytes }
        if let validateAt { configuration.validateInputAt = .init(rawValue: validateAt)! }
        if let retryAfter { configuration.retryAfterSeconds = retryAfter }
        if let slowSeconds { configuration.slowAnswerSeconds = slowSeconds }
        if let webhookAttempts { configuration.webhookAttempts = max(1, webhookAttempts) }
        if let webhookRetrySeconds { configuration.webhookRetrySeconds = webhookRetrySeconds }
        if let seed { configuration.seed = seed }
        if let wrongDuration { configuration.wrongDurationProbability = wrongDuration }
        if !faults.isEmpty { configuration.faults = try faults.map(FaultRule.init(parsing:)) }
        if !acceptedKeys.isEmpty { configuration.acceptedKeys = acceptedKeys }
        if hold { configuration.holdRequests = true }
        if holdAnswers { configuration.holdSubmitAnswers = true }
        if let answerBaseUrl { configuration.answerBaseURL = answerBaseUrl }
        if listUnfinished { configuration.listingShowsUnfinished = true }

        var logger = Logger(label: "fal-emulator")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .notice
        let emulator = FalEmulator(configuration: configuration, logger: logger)
        let application = emulator.makeApplication(host: host, port: port) { url in
            // Written with write(2) so the line is on the pipe at once, whatever stdout's buffering.
            let line = Array("LISTENING \(url.absoluteString)\n".utf8)
            _ = line.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
        }
        let group = ServiceGroup(
            configuration: .init(services: [application], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
