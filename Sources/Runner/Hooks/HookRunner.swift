import Foundation
import JobStore
import KlingCore
import KlingSpec
import Logging
import ServiceLifecycle

/// When a failed hook runs again: `on_complete_retry` (10 s) after the first failure, doubling, at most 10 minutes apart; after
/// `attempts` runs it is recorded as failed and left alone (the job stays completed either way).
enum HookRetry {
    static let attempts = 5

    /// After the `run`-th run failed: when to run again, or nil to give up.
    static func next(afterRun run: Int, now: Date, first: TimeInterval = 10) -> Date? {
        guard run < attempts else { return nil }
        return now.addingTimeInterval(min(600, first * pow(2, Double(max(0, run - 1)))))
    }
}

/// Runs each completed job's on_complete hook, at most `on_complete_concurrency` at a time, each with its timeout.
/// The hook reads the job's video and manifest; kling-batch never deletes or changes the video for it, and a
/// failing hook never fails the job. Its result goes into the job's events and its manifest's `on_complete`.
public struct HookRunner: Service {
    let environment: RunnerEnvironment
    let commands = CommandRunner()

    public init(environment: RunnerEnvironment) { self.environment = environment }

    public func run() async throws {
        let running = RunningSet()
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    let slots = environment.configuration.hookConcurrency - running.count
                    if slots > 0, let due = try? await environment.store.dueHooks(limit: slots + running.count, now: Date()) {
                        for job in due.filter({ !running.contains($0.id) }).prefix(slots) {
                            running.insert(job.id)
                            group.addTask {
                                await runHook(of: job)
                                running.remove(job.id)
                                environment.hookBell.ring()
                            }
                        }
                    }
                    let next = (try? await environment.store.nextHookDue()) ?? nil
                    // Every hook is queued by this process, which rings `hookBell`: the 30 s cap is only a safety net.
                    let wake = ContinuousClock.now + .milliseconds(Int64(min(30, max(0.01, (next ?? .distantFuture).timeIntervalSinceNow)) * 1000))
                    _ = await cancelWhenGracefulShutdown { await environment.hookBell.wait(until: wake) }
                }
                // Hooks already running finish (or meet their timeout); what is not run stays pending for the next start.
            }
        } onGracefulShutdown: {}
    }

    /// Runs the hooks due now, `on_complete_concurrency` at a time, until none is due (the end of `run --once`);
    /// a hook that failed waits for its retry in a later run or the daemon.
    public func drain() async {
        var ran = Set<Int64>()
        while let due = try? await environment.store.dueHooks(limit: environment.configuration.hookConcurrency, now: Date()),
              case let fresh = due.filter({ !ran.contains($0.id) }), !fresh.isEmpty {
            await withTaskGroup(of: Void.self) { group in
                for job in fresh {
                    ran.insert(job.id)
                    group.addTask { await runHook(of: job) }
                }
            }
        }
    }

    /// One run of one job's hook, recorded in the store and in its manifest.
    func runHook(of job: JobRecord) async {
        let logger = environment.logger
        let name = await environment.displayName(job)
        let run = job.hookAttempts + 1
        let outcome: CommandRunner.Outcome
        switch HookCommand.decode(job.hookCommand) {
        case .words(let words):
            outcome = await commands.run(words, stdin: [], environment: await hookEnvironment(job), timeout: environment.configuration.hookTimeout)
        case .unknown(let problem):
            outcome = CommandRunner.Outcome(status: nil, startError: problem)
        }
        if outcome.cancelled {
            logger.notice("on_complete stopped with the runner; it runs again at the next start", metadata: ["job": "\(name)"])
            return
        }
        let now = Date()
        let (next, message, level) = Self.verdict(outcome, run: run, now: now, firstRetry: environment.configuration.hookRetry.seconds)
        RunnerMetrics.hookRan(succeeded: outcome.succeeded)
        let result = HookCommand.result(outcome, run: run, next: next, at: now)
        do {
            try await environment.store.recordHookRun(job.id, result: result.canonicalString(), outcome: next, message: message, at: now)
        } catch {
            logger.error("cannot record the on_complete result now (\(error)); it runs again", metadata: ["job": "\(name)"])
            return
        }
        HookCommand.annotate(manifestAt: job.manifestPath, with: result, logger: logger)
        // Said once the store and the manifest both have it, so whoever reads the log line finds it there.
        logger.log(level: level, "\(outcome.succeeded ? "on_complete ran (exit 0)" : message)", metadata: ["job": "\(name)"])
    }

    /// What one run's outcome means: done, run again later, or given up; the event's message and the log's level.
    static func verdict(_ outcome: CommandRunner.Outcome, run: Int, now: Date, firstRetry: TimeInterval) -> (HookRunOutcome, String, Logger.Level) {
        if outcome.succeeded { return (.done, "on_complete ran: exit 0", .info) }
        if outcome.startError == nil, let retry = HookRetry.next(afterRun: run, now: now, first: firstRetry) {
            let message = "on_complete failed (\(outcome.summary), run \(run) of \(HookRetry.attempts)); runs again in \(String(format: "%.1f", retry.timeIntervalSince(now))) s"
                + (outcome.tail.last.map { ": \($0)" } ?? "")
            return (.retry(at: retry), message, .warning)
        }
        let message = "on_complete failed for good (\(outcome.summary), run \(run)); the job stays completed" + (outcome.tail.last.map { ": \($0)" } ?? "")
        return (.gaveUp, message, .error)
    }

    /// What the hook is told: the video, the manifest, the batch, the job, the request and the spec's meta.
    private func hookEnvironment(_ job: JobRecord) async -> [String: String] {
        let batch = (try? await environment.store.batch(job.batchId))?.name ?? ""
        let meta = (try? JSONDecoder().decode(JobSpec.self, from: Data(job.specJson.utf8)))?.meta
        return [
            "KLING_BATCH_VIDEO": job.videoPath ?? "", "KLING_BATCH_MANIFEST": job.manifestPath ?? "", "KLING_BATCH_BATCH": batch,
            "KLING_BATCH_JOB": job.name, "KLING_BATCH_REQUEST_ID": job.requestId ?? "",
            "KLING_BATCH_META": JSONValue.object(meta ?? [:]).canonicalString(), "KLING_BATCH_HOOK_RUN": String(job.hookAttempts + 1),
        ]
    }
}
