import FalClient
import Foundation
import JobStore
import KlingCore

/// Everything that tunes a runner; defaults suit a real fal account. Reloadable parts are noted.
public struct RunnerConfiguration: Sendable {
    /// Where the database and lock live.
    public var stateDirectory: String
    /// Root of the output tree: `<out>/<YYYY-MM-DD>/<batch>/<job>.mp4`.
    public var outputDirectory: String
    /// Requests at fal at once (reloadable).
    public var concurrency = 4
    public var uploadConcurrency = 4
    public var downloadConcurrency = 4
    public var retry = RetryPolicy()
    /// Status polling (reloadable).
    public var polling = PollSchedule()
    /// How long a submit of unknown outcome is looked for in fal's listing before it is submitted again.
    public var reconcileGrace: Duration = .seconds(30 * 60)
    /// How often the listing is asked while reconciling.
    public var reconcileInterval: Duration = .seconds(10)
    /// Uploaded images are reused for this long, then uploaded again (fal's storage URLs are not forever).
    public var uploadReuse: Duration = .seconds(24 * 3600)
    /// Download tries (each resuming where the last stopped) before a job fails.
    public var maxDownloadTries = 8
    /// Result fetches for a request fal reports finished, before it counts as a failed attempt.
    public var maxResultFetches = 10
    /// After a 429 lowered the concurrency, the quiet before it grows back by one; each further step doubles the
    /// growth (`SubmissionGate.limit(at:)`), so any limit is back within about a minute.
    public var concurrencyRecovery: Duration = .seconds(5)
    /// Submits in a row that cannot reach fal before `run --once` stops and says so.
    public var unreachableLimit = 8
    /// `run --once`: how long fal may go unanswering (connection errors, 5xx) before the run gives up and leaves
    /// its jobs for the next one; zero: never.
    public var giveUpAfter: Duration = .seconds(30 * 60)
    /// Dollars per second of video by endpoint: estimates, the budget, manifests and `report` (reloadable).
    public var prices = PriceList.published
    /// fal's submit headers: output lifetime, queue priority, start timeout (reloadable; recorded in manifests).
    public var submitOptions = SubmitOptions(outputLifetime: .seconds(7 * 86_400))
    /// Spending limits (reloadable).
    public var budget = SpendLimits()
    /// How long a written spec file must stay unchanged before the daemon reads it (reloadable).
    public var settle: Duration = .seconds(2)
    /// Full rescans of the jobs folder besides inotify (reloadable).
    public var rescanInterval: Duration = .seconds(30)
    /// Below this much free space in the state folder, nothing is claimed for submission (0: no floor).
    public var minimumFreeStateBytes: Int64 = 64_000_000
    /// While our own disk or store refuses writes, how often a paused runner tries again (at most 30 s).
    public var localRecheck: Duration = .seconds(10)
    /// The on_complete hook every completed job gets (words), unless its batch chooses another or `none`.
    public var onComplete: [String]?
    /// Hooks a spec may name with `on_complete: NAME`.
    public var hooks: [String: [String]] = [:]
    public var hookTimeout: Duration = .seconds(600)
    public var hookConcurrency = 2
    /// The first wait before a failed hook runs again (it doubles, up to 10 minutes).
    public var hookRetry: Duration = .seconds(10)
    /// Whether jobs at fal are followed on fal's status stream (polling only while it is down), or polled only.
    public var statusStream = true
    /// Poster frames beside finished videos (`posters`): with ffmpeg from PATH, none, or a given ffmpeg.
    public var posters = PosterSetting.auto
    /// The least silence after which a status stream counts as broken (1.5 × the expected run time if longer).
    public var streamSilence: Duration = .seconds(15)
    /// The public URL fal POSTs webhooks to (`webhook_url`); used only while the daemon's listener serves its path.
    public var webhookURL: URL?
    /// Where fal's webhook keys are published (nil: fal's, or the emulator's with `--fal-url`).
    public var webhookKeysURL: URL?
    /// Where events are told (`notify:`); empty: nowhere, and the outbox only keeps them.
    public var notify: [NotificationTarget] = []
    /// The first wait before a failed delivery is tried again (it doubles, up to 10 minutes).
    public var notifyRetry: Duration = .seconds(5)
    /// A job at fal whose state has not moved for this long is told as `stalled`.
    public var stallAfter: Duration = .seconds(3600)
    /// How often a runner checks that its database file is still the one it opened.
    public var storeCheckInterval: Duration = .seconds(2)
    /// What the store is for: a simulated run never uses a real store, nor the reverse.
    public var storePurpose: StorePurpose = .real

    public init(stateDirectory: String, outputDirectory: String) {
        self.stateDirectory = stateDirectory
        self.outputDirectory = outputDirectory
    }
}
