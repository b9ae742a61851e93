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
    let pricePerSecond: USD

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
            "estimated_cost_usd": .double((pricePerSecond * job.durationSeconds).dollars),
            "duration_seconds": .int(Int64(job.durationSeconds)),
            "status_polls": .int(Int64(job.statusPolls)),
            "timestamps": [
                "accepted": Self.date(batch.acceptedAt),
                "submitted": Self.date(job.submittedAt),
                "started": Self.date(job.startedAt),
                "completed": Self.date(job.falCompletedAt),
                "finished": Self.date(job.finishedAt ?? Date()),
            ],
            "attempts": .array(attempts.map { attempt in
                [
                    "number": .int(Int64(attempt.number)),
                    "started": Self.date(attempt.startedAt),
                    "ended": Self.date(attempt.endedAt),
                    "request_id": attempt.requestId.map(JSONValue.string) ?? .null,
                    "outcome": .string(attempt.outcome.rawValue),
                    "counted": .bool(attempt.counted),
                    "error": attempt.errorMessage.map { message in
                        ["reason": .string(attempt.errorReason ?? "error"), "message": .string(message),
                         "http_status": attempt.httpStatus.map { .int(Int64($0)) } ?? .null]
                    } ?? .null,
                ]
            }),
            "fal": [
                "metrics": job.falMetrics.flatMap { try? JSONValue.parse($0) } ?? .null,
                "logs": .array(logs.map { .string($0.message) }),
                "result": job.resultJson.flatMap { try? JSONValue.parse($0) } ?? .null,
            ],
            "error": job.state == .completed ? .null : (job.lastError.map(JSONValue.string) ?? .null),
        ]
        if let spec {
            body["local_images"] = .array(spec.localImages.map { image in
                [
                    "written": .string(image.written), "path": .string(image.path), "sha256": .string(image.sha256),
                    "bytes": .int(Int64(image.byteCount)), "format": .string(image.header.format.rawValue),
                    "width": .int(Int64(image.header.width)), "height": .int(Int64(image.header.height)),
                    "uploaded_url": uploads[image.sha256].map(JSONValue.string) ?? .null,
                ]
            })
            body["prompt"] = .string(spec.prompt)
            body["aspect_ratio"] = .string(spec.aspectRatio.rawValue)
        }
        if let video {
            body["video"] = [
                "file": .string((video.path as NSString).lastPathComponent), "path": .string(video.path),
                "bytes": .int(video.bytes), "sha256": .string(video.sha256),
                "source_url": job.videoUrl.map(JSONValue.string) ?? .null, "content_type": "video/mp4",
            ]
        } else {
            body["video"] = .null
        }
        return .object(body)
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
