import Foundation
internal import GRDB
import KlingCore

extension JobStore {
    /// queued (due) or held → uploading, for up to `limit` jobs: first those `retry` put back to finish what fal
    /// already has (free, and fal deletes results in time), then highest priority first and oldest first within one, reserving each one's cost in the
    /// same transaction; a job the budget cannot cover waits in `held` with the reason (no attempt is spent), and
    /// is reported so the caller can log it. Two processes sharing the store serialize on SQLite's write lock, so the
    /// limit holds across them too. With `origin`, a job put back to fetch a result at another origin is not
    /// claimed: only a runner configured for that origin may ask for it.
    public func claim(limit: Int, budget: SpendLimits = SpendLimits(), origin: String? = nil, now: Date = Date()) throws -> ClaimOutcome {
        guard limit > 0 else { return ClaimOutcome() }
        return try write { db in
            let candidates = try Self.fetchJobs(
                db,
                """
                    SELECT * FROM job
                    WHERE ((state = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= ?)) OR state = 'held')
                      AND (? IS NULL OR \(Self.notForeign))
                    ORDER BY resume IS NOT NULL DESC, priority DESC, next_attempt_at IS NOT NULL, next_attempt_at, id
                    LIMIT ?
                    """,
                // Without a budget every candidate is claimed; with one, a window wider than the free slots lets
                // cheaper jobs go ahead of ones that are held.
                [now, origin, origin, budget == SpendLimits() ? limit : max(4 * limit, 64)])
            var outcome = ClaimOutcome()
            guard !candidates.isEmpty else { return outcome }
            let day = Self.budgetDay(now)
            var dayTotal = budget.perDay == nil ? 0 : try Self.committed(db, day: day)
            var batchTotals: [Int64: Int64] = [:]
            for job in candidates where outcome.claimed.count < limit {
                if let resumed = try Self.resume(db, job, at: now) {
                    outcome.claimed.append(resumed)
                    continue
                }
                let needs = job.reservedMicros > 0 ? 0 : job.estimatedCostMicros
                let batchTotal = try budget.perBatch == nil ? 0 : batchTotals[job.batchId] ?? Self.committed(db, batch: job.batchId)
                var reason: String?
                var hold: (scope: String, committed: Int64, limit: Int64)?
                if let perDay = budget.perDay?.micros, dayTotal + needs > perDay {
                    reason = "over the daily budget: \(Self.dollars(dayTotal)) of \(Self.dollars(perDay)) committed today (UTC), this job needs \(Self.dollars(needs))"
                    hold = ("day", dayTotal, perDay)
                } else if let perBatch = budget.perBatch?.micros, batchTotal + needs > perBatch {
                    reason = "over the batch budget: \(Self.dollars(batchTotal)) of \(Self.dollars(perBatch)) committed in this batch, this job needs \(Self.dollars(needs))"
                    hold = ("batch", batchTotal, perBatch)
                }
                if let reason, let hold {
                    if job.state == .queued {
                        let held = try Self.transition(db, job.id, from: .queued, to: .held, set: [.heldReason(reason)], event: "held: \(reason)", at: now)
                        outcome.held.append((held, reason))
                        try Self.noteHold(db, held, reason: reason, scope: hold.scope, committed: hold.committed, limit: hold.limit, needs: needs, day: day, at: now)
                    } else if job.heldReason != reason {
                        _ = try Self.update(db, job.id, in: .held, set: [.heldReason(reason)], at: now)
                    }
                    continue
                }
                var fields: [JobField] = [.heldReason(nil)]
                if needs > 0 { fields += [.reservedMicros(needs), .reservedDay(day)] }
                let message = job.state == .held ? "budget allows it now; claimed" : "claimed; uploading local images"
                outcome.claimed.append(try Self.transition(db, job.id, from: job.state, to: .uploading, set: fields, event: message, at: now))
                dayTotal += needs
                batchTotals[job.batchId] = batchTotal + needs
            }
            return outcome
        }
    }

    /// A job `retry` put back to finish what fal already has: queued → downloading, or → in_queue to fetch its
    /// result again. Nothing is submitted and nothing reserved; nil for a job that needs a submit.
    static func resume(_ db: Database, _ job: JobRecord, at now: Date) throws -> JobRecord? {
        guard job.state == .queued, let route = job.resume else { return nil }
        switch route {
        case .download:
            return try transition(db, job.id, from: .queued, to: .downloading, set: [.resume(nil)],
                                  event: "claimed to download the video again; nothing is submitted", at: now)
        case .result:
            return try transition(db, job.id, from: .queued, to: .inQueue, set: [.resume(nil)],
                                  event: "claimed to fetch the result of request \(job.requestId ?? "?") again; nothing is submitted", at: now)
        case .submit, .paidResubmit:
            return nil
        }
    }
}

extension JobStore {
    /// The first budget hold of a batch on a day is told once (`budget.held`), however many of its jobs wait.
    static func noteHold(
        _ db: Database, _ job: JobRecord, reason: String, scope: String, committed: Int64, limit: Int64, needs: Int64, day: String, at now: Date
    ) throws {
        let batch = try String.fetchOne(db, sql: "SELECT name FROM batch WHERE id = ?", arguments: [job.batchId]) ?? "?"
        let payload: JSONValue = [
            "batch": .string(batch), "job": .string(job.name), "reason": .string(reason), "budget": .string(scope), "day": .string(day),
            "committed_micros": .int(committed), "limit_micros": .int(limit), "needs_micros": .int(needs),
            "committed_usd": .string(USD(micros: committed).exactDescription), "limit_usd": .string(USD(micros: limit).exactDescription),
        ]
        try insertOutbox(db, OutboxEvent(id: "budget.held:\(job.batchId):\(day)", kind: OutboxEvent.budgetHeld, payload: payload, at: now))
    }
}
