import Crypto
import Foundation
import JobStore
import KlingCore
import KlingSpec

/// The JSON written beside each finished job's video: what was asked, what was sent, what happened, what it cost.
struct Manifest {
    let batch: BatchRecord
    let job: JobRecord
    let spec: JobSpec?
    let attempts: [AttemptRecord]
    let logs: [JobEvent]
    let uploads: [String: String]
    let video: DownloadedVideo?
    /// The job's endpoint's price, and whether it was known or assumed.
    let price: PriceList.Price
    /// The job's ledger rows: every submission that may have cost money.
    let spend: [SpendRecord]
    /// The runner that finished the job and wrote this file: with several hosts, where its video was downloaded.
    let runner: RunnerIdentity

    var json: JSONValue {
        var body: [String: JSONValue] = [
            "kling_batch_version": .string(KlingBatchVersion.current),
            "job": .string(job.name),
            "batch": .string(batch.name),
            "spec_file": .string(batch.sourcePath),
            "spec_sha256": .string(batch.sourceSha256),
            "state": .string(job.state.label),
            "endpoint": .string(job.endpoint),
            "request_id": job.requestId.map(JSONValue.string) ?? .null,
            "possible_duplicate": .bool(job.possibleDuplicate),
            "input": job.submittedInput.flatMap { try? JSONValue.parse($0) } ?? .null,
            "estimated_cost_usd": .double(USD(micros: job.estimatedCostMicros).dollars),
            "cost": cost,
            "submit_options": job.submitOptions.flatMap { try? JSONValue.parse($0) } ?? .null,
            "needs_review": job.needsReview.map(JSONValue.string) ?? .null,
            "duration_seconds": .int(Int64(job.durationSeconds)),
            "status_polls": .int(Int64(job.statusPolls)),
            "timestamps": [
                "accepted": Self.date(batch.acceptedAt),
                "submitted": Self.date(job.submittedAt),
                "started": Self.date(job.startedAt),
                "completed": Self.date(job.falCompletedAt),
                "finished": Self.date(job.finishedAt ?? Date()),
            ],
            "attempts": attemptsJSON,
            "finished_by": ["runner": .string(runner.id), "host": .string(runner.host)],
            "fal": [
                "metrics": job.falMetrics.flatMap { try? JSONValue.parse($0) } ?? .null,
                "logs": .array(logs.map { .string($0.message) }),
                "result": job.resultJson.flatMap { try? JSONValue.parse($0) } ?? .null,
            ],
            "error": job.state == .completed ? .null : (job.lastError.map(JSONValue.string) ?? .null),
        ]
        if let spec {
            body["local_images"] = localImages(spec)
            body["prompt"] = .string(spec.prompt)
            body["aspect_ratio"] = .string(spec.aspectRatio.rawValue)
            body["meta"] = .object(spec.meta ?? [:])
        }
        body["video"] = videoJSON
        return .object(body)
    }

    /// Every attempt, with its error: River's AttemptError, as the manifest keeps it.
    var attemptsJSON: JSONValue {
        .array(attempts.map { attempt in
            [
                "number": .int(Int64(attempt.number)),
                "started": Self.date(attempt.startedAt),
                "ended": Self.date(attempt.endedAt),
                "request_id": attempt.requestId.map(JSONValue.string) ?? .null,
                "outcome": .string(attempt.outcome.rawValue),
                "counted": .bool(attempt.counted),
                "attempted_by": attempt.attemptedBy.map(JSONValue.string) ?? .null,
                "error": attempt.errorMessage.map { message in
                    ["reason": .string(attempt.errorReason ?? "error"), "message": .string(message),
                     "http_status": attempt.httpStatus.map { .int(Int64($0)) } ?? .null]
                } ?? .null,
            ]
        })
    }

    /// Each local image as read and checked, with the storage URL it was sent as.
    func localImages(_ spec: JobSpec) -> JSONValue {
        .array(spec.localImages.map { image in
            [
                "written": .string(image.written), "path": .string(image.path), "sha256": .string(image.sha256),
                "bytes": .int(Int64(image.byteCount)), "format": .string(image.header.format.rawValue),
                "width": .int(Int64(image.header.width)), "height": .int(Int64(image.header.height)),
                "uploaded_url": uploads[image.sha256].map(JSONValue.string) ?? .null,
            ]
        })
    }

    /// The video as written and as its MP4 boxes describe it; null for a job that has none.
    var videoJSON: JSONValue {
        guard let video else { return .null }
        return [
            "file": .string((video.path as NSString).lastPathComponent), "path": .string(video.path),
            "bytes": .int(video.bytes), "sha256": .string(video.sha256),
            "source_url": job.videoUrl.map(JSONValue.string) ?? .null, "content_type": "video/mp4",
            "duration_seconds": video.durationMillis.map { .double(Double($0) / 1000) } ?? .null,
            "width": video.width.map { .int(Int64($0)) } ?? .null, "height": video.height.map { .int(Int64($0)) } ?? .null,
        ]
    }

    /// What this job committed at fal, from the spend ledger: the sum of every submission that may have been paid
    /// (one normally; more after a paid resubmission or a lost submit). `report` adds up the same rows.
    var cost: JSONValue {
        let micros = spend.reduce(Int64(0)) { $0 + $1.micros }
        return [
            "usd": .double(USD(micros: micros).dollars),
            "micros": .int(micros),
            "submissions": .int(Int64(spend.count)),
            "possible_duplicates": .int(Int64(spend.filter(\.possibleDuplicate).count)),
            "price_per_second_usd": .double(price.perSecond.dollars),
            "price_known": .bool(price.known),
        ]
    }

    static func date(_ date: Date?) -> JSONValue {
        guard let date else { return .null }
        return .string(date.iso8601Milliseconds)
    }
}

/// Lower-case hex SHA-256.
func sha256Hex(_ data: Data) -> String {
    SHA256.hash(data: data).hexString
}

/// Lower-case hex SHA-256 of a file, read in chunks so a large video is never held in memory.
func sha256Hex(fileAt path: String) -> String? {
    guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
    defer { try? handle.close() }
    var hasher = SHA256()
    while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty {
        hasher.update(data: chunk)
    }
    return hasher.finalize().hexString
}
