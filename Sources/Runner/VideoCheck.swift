import Foundation
import JobStore
import KlingCore
import KlingSpec

/// Whether a downloaded video is what was paid for: fal bills per second asked, so a clip of another length or
/// shape is flagged for a person to look at. Never resubmitted automatically: that would pay again.
enum VideoCheck {
    /// How far the playing time may stray from the seconds asked for.
    static let durationTolerance = 0.5
    /// How far width/height may stray from the ratio asked for (encoders round sizes to even pixels).
    static let aspectTolerance = 0.03

    /// Why `summary` differs from `seconds` at `aspect`; nil when it matches.
    static func review(_ summary: MP4Summary, seconds: Int, aspect: AspectRatio?) -> String? {
        var reasons: [String] = []
        if abs(summary.durationSeconds - Double(seconds)) > durationTolerance {
            reasons.append(String(format: "plays %.2f s, %d s were paid for", summary.durationSeconds, seconds))
        }
        if let aspect, let wanted = ratio(of: aspect) {
            if summary.width <= 0 || summary.height <= 0 {
                reasons.append("has no video track size (\(aspect.rawValue) was asked for)")
            } else {
                let actual = Double(summary.width) / Double(summary.height)
                if abs(actual - wanted) / wanted > aspectTolerance {
                    reasons.append("is \(summary.width)×\(summary.height), not \(aspect.rawValue)")
                }
            }
        }
        return reasons.isEmpty ? nil : "the video " + reasons.joined(separator: " and ")
    }

    /// Reads the file's MP4 boxes and checks them against the job; a file whose boxes cannot be read is flagged.
    static func inspect(_ video: DownloadedVideo, of job: JobRecord) -> DownloadedVideo {
        var checked = video
        let aspect = (try? JSONDecoder().decode(JobSpec.self, from: Data(job.specJson.utf8)))?.aspectRatio
        do {
            let summary = try MP4Summary.read(fileAt: video.path)
            // A damaged or "unknown" (all ones) duration must not trap: a crash here would recur at every start.
            guard summary.durationSeconds.isFinite, (0...86_400).contains(summary.durationSeconds) else {
                checked.needsReview = "the video claims an impossible length (\(summary.durationSeconds) s)"
                return checked
            }
            checked.durationMillis = Int((summary.durationSeconds * 1000).rounded())
            checked.width = summary.width
            checked.height = summary.height
            checked.needsReview = review(summary, seconds: job.durationSeconds, aspect: aspect)
        } catch {
            checked.needsReview = "the video's length could not be read (\(error))"
        }
        return checked
    }

    /// Width over height for a ratio a spec can ask for.
    static func ratio(of aspect: AspectRatio) -> Double? {
        let parts = aspect.rawValue.split(separator: ":").compactMap { Double($0) }
        guard parts.count == 2, parts[1] > 0 else { return nil }
        return parts[0] / parts[1]
    }
}
