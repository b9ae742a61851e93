import Foundation
import GRDB

/// Decodes a job from a row by column name: the Codable path costs several times more, and jobs are read on
/// every transition (a profile of a 2,000-job run put it at 7% of the runner's CPU).
extension JobRecord {
    public init(row: Row) throws {
        id = row["id"]
        batchId = row["batch_id"]
        name = row["name"]
        let stateText: String = row["state"]
        guard let parsed = JobState(rawValue: stateText) else {
            throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "unknown job state '\(stateText)' in job \(id)")
        }
        state = parsed
        specJson = row["spec_json"]
        endpoint = row["endpoint"]
        durationSeconds = row["duration_seconds"]
        estimatedCostMicros = row["estimated_cost_micros"]
        attempts = row["attempts"]
        deferrals = row["deferrals"]
        nextAttemptAt = row["next_attempt_at"]
        lastError = row["last_error"]
        requestId = row["request_id"]
        statusUrl = row["status_url"]
        responseUrl = row["response_url"]
        cancelUrl = row["cancel_url"]
        submittedInput = row["submitted_input"]
        submitStartedAt = row["submit_started_at"]
        possibleDuplicate = row["possible_duplicate"]
        statusPolls = row["status_polls"]
        logLines = row["log_lines"]
        resultJson = row["result_json"]
        falMetrics = row["fal_metrics"]
        videoUrl = row["video_url"]
        videoExpectedBytes = row["video_expected_bytes"]
        videoPath = row["video_path"]
        videoBytes = row["video_bytes"]
        videoSha256 = row["video_sha256"]
        manifestPath = row["manifest_path"]
        heldReason = row["held_reason"]
        reservedMicros = row["reserved_micros"]
        reservedDay = row["reserved_day"]
        cancelRequested = row["cancel_requested"]
        falOrigin = row["fal_origin"]
        retryBy = (row["retry_by"] as String?).flatMap(RetryRoute.init(rawValue:))
        resume = (row["resume"] as String?).flatMap(RetryRoute.init(rawValue:))
        createdAt = row["created_at"]
        submittedAt = row["submitted_at"]
        startedAt = row["started_at"]
        falCompletedAt = row["fal_completed_at"]
        finishedAt = row["finished_at"]
        updatedAt = row["updated_at"]
    }
}
