import ArgumentParser
import Foundation
import JobStore
import KlingCore
import Runner

/// `kling-batch show JOB`: everything known about one job.
struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Everything known about one job: input, events, attempts with errors, fal's logs, video and manifest.",
        discussion: """
            JOB is batch/job as `list` shows it, an unambiguous prefix of it, a unique job name, or a request id.

            Examples:
              kling-batch show teasers/teaser-a
              kling-batch show 7d1f3c2e-9a4b-4c1e-8f7a-0b2c3d4e5f60
              kling-batch show teasers/teaser-a --json | jq .attempts
            """
    )

    @Argument(help: "The job.")
    var job: String

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let (store, _) = try self.store.openStore()
        let resolver = try JobResolver(store: store)
        let job = try resolver.resolve(self.job)
        let batch = resolver.batches[job.batchId]
        let attempts = try store.attempts(of: job.id)
        let events = try store.events(of: job.id)
        if output.json {
            Console.json(json(job, name: resolver.name(job), batch: batch, attempts: attempts, events: events))
            return
        }
        Console.out("\(resolver.name(job))  \(job.state.label)")
        Console.out("  spec file:  \(batch?.sourcePath ?? "?")")
        Console.out("  endpoint:   \(job.endpoint)")
        if job.priority != .normal { Console.out("  priority:   \(job.priority.label) (claimed \(job.priority == .high ? "before" : "after") normal jobs)") }
        Console.out("  video:      \(job.durationSeconds) s, estimated \(USD(micros: job.estimatedCostMicros))")
        if let request = job.requestId { Console.out("  request:    \(request)") }
        if let reason = job.heldReason { Console.out("  held:       \(reason)") }
        if let error = job.lastError { Console.out("  \(job.state == .downloading ? "waiting:   " : "last error:") \(LogSafe.escape(error))") }
        if let route = job.retryRoute { Console.out("  retry:      \(route.label)") }
        if let origin = job.falOrigin { Console.out("  sent to:    \(origin)") }
        if job.possibleDuplicate { Console.out("  note:       possibly submitted twice (a lost submit was given up on after the grace period)") }
        if let state = job.hookState {
            let last = job.hookResult.flatMap { try? JSONValue.parse(Data($0.utf8)) }
            let exit = last?["exit_status"]?.intValue.map { "exit \($0)" } ?? (last?["timed_out"]?.boolValue == true ? "killed at its timeout" : last?["error"]?.stringValue ?? "")
            let retry = job.hookNextAt.map { state == "pending" ? ", runs again at \($0.iso8601)" : "" } ?? ""
            Console.out("  on_complete: \(state) after \(job.hookAttempts) run\(job.hookAttempts == 1 ? "" : "s")\(exit.isEmpty ? "" : " (\(exit))")\(retry)")
        }
        Console.out("  output:     \(job.videoPath ?? "-")" + (job.videoDurationMs.map { String(format: " (%.2f s, %d×%d)", Double($0) / 1000, job.videoWidth ?? 0, job.videoHeight ?? 0) } ?? ""))
        if let review = job.needsReview { Console.out("  review:     \(review) (kept, not resubmitted: that would pay again)") }
        Console.out("  manifest:   \(job.manifestPath ?? "-")")
        let spec = (try? JSONValue.parse(Data(job.specJson.utf8)))?["prompt"]?.stringValue ?? ""
        Console.out("  prompt:     \(spec.prefix(300))")
        let meta = job.specMeta
        if !meta.isEmpty { Console.out("  meta:       \(JSONValue.object(meta).canonicalString())") }
        if !attempts.isEmpty {
            Console.out("attempts:")
            for attempt in attempts {
                var line = "  #\(attempt.number) \(attempt.startedAt.iso8601) \(attempt.outcome.rawValue)\(attempt.counted ? "" : " (not counted)")"
                if let request = attempt.requestId { line += " request \(request)" }
                if let runner = attempt.attemptedBy { line += " by \(runner)" }
                if let message = attempt.errorMessage { line += ": \(message)" }
                Console.out(line)
            }
        }
        let history = events.filter { $0.kind != .log }
        if !history.isEmpty {
            Console.out("events:")
            for event in history { Console.out("  \(event.at.iso8601) \(event.kind == .error ? "error: " : "")\(event.message)") }
        }
        let logs = events.filter { $0.kind == .log }
        if !logs.isEmpty {
            Console.out("fal's logs:")
            for event in logs { Console.out("  \(event.message)") }
        }
    }

    private func json(_ job: JobRecord, name: String, batch: BatchRecord?, attempts: [AttemptRecord], events: [JobEvent]) -> JSONValue {
        func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        var object: [String: JSONValue] = [:]
        object["name"] = .string(name)
        object["state"] = .string(job.state.label)
        object["spec_file"] = text(batch?.sourcePath)
        object["spec"] = (try? JSONValue.parse(Data(job.specJson.utf8))) ?? .null
        object["input"] = job.submittedInput.flatMap { try? JSONValue.parse(Data($0.utf8)) } ?? .null
        object["request_id"] = text(job.requestId)
        object["attempts_counted"] = .int(Int64(job.attempts))
        object["held_reason"] = text(job.heldReason)
        object["last_error"] = text(job.lastError)
        object["possible_duplicate"] = .bool(job.possibleDuplicate)
        object["retry"] = job.retryRoute.map { .string($0.rawValue) } ?? .null
        object["fal_origin"] = text(job.falOrigin)
        object["video"] = text(job.videoPath)
        object["manifest"] = text(job.manifestPath)
        object["estimated_cost_usd"] = .double(USD(micros: job.estimatedCostMicros).dollars)
        object["needs_review"] = text(job.needsReview)
        object["priority"] = .string(job.priority.label)
        object["on_complete"] = job.hookState.map { state in
            .object(["state": .string(state), "runs": .int(Int64(job.hookAttempts)), "next_at": job.hookNextAt.map { .string($0.iso8601) } ?? .null,
                     "last": job.hookResult.flatMap { try? JSONValue.parse(Data($0.utf8)) } ?? .null])
        } ?? .null
        object["meta"] = .object(job.specMeta)
        object["video_duration_seconds"] = job.videoDurationMs.map { .double(Double($0) / 1000) } ?? .null
        object["submit_options"] = job.submitOptions.flatMap { try? JSONValue.parse(Data($0.utf8)) } ?? .null
        object["attempts"] = .array(attempts.map { attempt in
            var entry: [String: JSONValue] = [:]
            entry["number"] = .int(Int64(attempt.number))
            entry["outcome"] = .string(attempt.outcome.rawValue)
            entry["counted"] = .bool(attempt.counted)
            entry["started_at"] = .string(attempt.startedAt.iso8601)
            entry["request_id"] = text(attempt.requestId)
            entry["error_reason"] = text(attempt.errorReason)
            entry["error"] = text(attempt.errorMessage)
            entry["http_status"] = attempt.httpStatus.map { .int(Int64($0)) } ?? .null
            entry["attempted_by"] = text(attempt.attemptedBy)
            return .object(entry)
        })
        object["events"] = .array(events.map { event in
            .object(["at": .string(event.at.iso8601), "kind": .string(event.kind.rawValue), "message": .string(event.message)])
        })
        return .object(object)
    }
}
