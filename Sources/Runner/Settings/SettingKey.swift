import Foundation

/// A setting a user can give in the config file, as `KLING_BATCH_<NAME>` in the environment, or as a flag.
///
/// One table for all three layers, so a name means the same thing everywhere and `kling-batch config` can
/// say where each effective value came from.
public enum SettingKey: String, CaseIterable, Sendable, Comparable {
    case jobs = "jobs_dir"
    case out
    case stateDir = "state_dir"
    case falURL = "fal_url"
    case keyFile = "key_file"
    case concurrency
    case uploads
    case downloads
    case maxAttempts = "max_attempts"
    case reconcileGrace = "reconcile_grace"
    case reconcileInterval = "reconcile_interval"
    case pollFirst = "poll_first"
    case pollMaxInQueue = "poll_max_in_queue"
    case pollMaxInProgress = "poll_max_in_progress"
    case settle
    case rescanInterval = "rescan_interval"
    case minFreeSpace = "min_free_space"
    case localRecheck = "local_recheck"
    case giveUpAfter = "give_up_after"
    case maxSpendPerDay = "max_spend_per_day"
    case maxSpendPerBatch = "max_spend_per_batch"
    case pricePerSecond = "price_per_second"
    case prices
    case outputLifetime = "output_lifetime"
    case queuePriority = "queue_priority"
    case startTimeout = "start_timeout"
    case statusStream = "status_stream"
    case streamSilence = "stream_silence"
    case onComplete = "on_complete"
    case hooks
    case onCompleteShell = "on_complete_shell"
    case onCompleteTimeout = "on_complete_timeout"
    case onCompleteConcurrency = "on_complete_concurrency"
    case onCompleteRetry = "on_complete_retry"
    case notify
    case notifyRetry = "notify_retry"
    case stallAfter = "stall_after"
    case posters
    case webhookURL = "webhook_url"
    case webhookKeysURL = "webhook_jwks_url"
    case http
    case logLevel = "log_level"
    case logFormat = "log_format"

    public static func < (lhs: SettingKey, rhs: SettingKey) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    /// `KLING_BATCH_CONCURRENCY` and so on.
    public var environmentName: String { "KLING_BATCH_" + rawValue.uppercased() }

    /// The command-line flag that sets it (commands that do not use a setting do not offer its flag).
    public var flag: String {
        switch self {
        case .jobs: "--jobs"
        case .pricePerSecond: "--rate"
        case .prices: "--price"
        default: "--" + rawValue.replacingOccurrences(of: "_", with: "-")
        }
    }

    /// What applies when no layer gives a value; nil means "not set" (no budget, no metrics listener, a derived path).
    public var defaultValue: String? {
        switch self {
        case .jobs: "jobs"
        case .out: "out"
        case .webhookURL, .webhookKeysURL: nil
        case .stateDir, .falURL, .keyFile, .maxSpendPerDay, .maxSpendPerBatch, .http, .logFormat, .prices, .queuePriority, .startTimeout, .notify, .onComplete, .hooks: nil
        case .onCompleteShell: "false"
        case .statusStream: "true"
        case .posters: "auto"
        case .streamSilence: "15s"
        case .onCompleteTimeout: "10m"
        case .onCompleteConcurrency: "2"
        case .onCompleteRetry: "10s"
        case .stallAfter: "1h"
        case .notifyRetry: "5s"
        case .outputLifetime: "7d"
        case .concurrency, .uploads, .downloads: "4"
        case .maxAttempts: "5"
        case .reconcileGrace: "30m"
        case .reconcileInterval: "10s"
        case .pollFirst: "500ms"
        case .pollMaxInQueue: "15s"
        case .pollMaxInProgress: "10s"
        case .settle: "2s"
        case .rescanInterval: "30s"
        case .minFreeSpace: "64MB"
        case .localRecheck: "10s"
        case .giveUpAfter: "30m"
        case .pricePerSecond: "0.112"
        case .logLevel: "info"
        }
    }

    /// Whether SIGHUP applies a change to it in a running daemon (the others need a restart).
    public var isReloadable: Bool {
        switch self {
        case .concurrency, .maxAttempts, .pollFirst, .pollMaxInQueue, .pollMaxInProgress, .maxSpendPerDay, .maxSpendPerBatch,
            .pricePerSecond, .prices, .outputLifetime, .queuePriority, .startTimeout, .keyFile, .rescanInterval, .settle, .reconcileGrace, .reconcileInterval, .logLevel, .minFreeSpace, .localRecheck, .notify, .notifyRetry, .stallAfter, .onComplete, .hooks, .onCompleteShell, .onCompleteTimeout, .onCompleteRetry, .statusStream, .streamSilence:
            true
        default: false
        }
    }

    /// One line for `kling-batch config` and the README.
    public var summary: String {
        switch self {
        case .jobs: "the folder the daemon watches for spec files"
        case .out: "root of the output tree: <out>/<YYYY-MM-DD>/<batch>/<job>.mp4 and .json"
        case .stateDir: "folder of the job database and lock (default $STATE_DIRECTORY, else $XDG_STATE_HOME/kling-batch or ~/.local/state/kling-batch; --simulate uses its simulate/ subfolder)"
        case .falURL: "send every fal call to this base URL, e.g. an emulator (default: fal's real hosts)"
        case .keyFile: "file holding the fal key (else FAL_KEY, FAL_KEY_ID+FAL_KEY_SECRET, or $CREDENTIALS_DIRECTORY/fal-key)"
        case .concurrency: "requests at fal at once"
        case .uploads: "image uploads at once"
        case .downloads: "video downloads at once"
        case .maxAttempts: "submissions per job before it fails"
        case .reconcileGrace: "how long a submit whose answer was lost is looked for before submitting again"
        case .reconcileInterval: "how often fal's request listing is read while reconciling"
        case .pollFirst: "first status poll after a submit"
        case .pollMaxInQueue: "longest wait between polls while a job is queued at fal"
        case .pollMaxInProgress: "longest wait between polls while a job runs at fal"
        case .settle: "how long a written file must stay unchanged before the daemon reads it"
        case .rescanInterval: "full rescan of the jobs folder, besides inotify"
        case .minFreeSpace: "free space the state folder must keep; below it nothing new is submitted (e.g. 64MB, 1GB; 0: no floor)"
        case .localRecheck: "while a full or read-only disk has paused the runner, how often it checks again (at most 30s)"
        case .giveUpAfter: "run --once: how long fal may stay unreachable before the run exits (code 5) and leaves its jobs for the next run (0: never)"
        case .maxSpendPerDay: "dollars that may be committed per day (UTC); jobs beyond it wait as held"
        case .maxSpendPerBatch: "dollars that may be committed per batch; jobs beyond it wait as held"
        case .pricePerSecond: "dollars per second of video on fal-ai/kling-video/o1/reference-to-video (a shorthand for its entry in prices)"
        case .prices: "dollars per second of video by endpoint (config: a mapping; flag/env: endpoint=dollars,…); an endpoint with no price counts at the highest known one"
        case .outputLifetime: "how long fal keeps each result video (X-Fal-Object-Lifecycle-Preference); long enough to re-download after a weekend"
        case .queuePriority: "normal or low (X-Fal-Queue-Priority; default: fal's, normal); low lets bulk work yield to interactive use"
        case .startTimeout: "how long a request may wait at fal before processing must start, else fal fails it unbilled (X-Fal-Request-Timeout; default: none)"
        case .notify: "where events are told (config: a list of targets, each url: or command:, with format, secret, events, timeout; see the README); secrets are shown as fingerprints"
        case .statusStream: "follow each job on fal's status stream (true), polling only while a stream is down; false: poll only"
        case .posters: "a poster frame (<job>.jpg) beside each finished video for the review page and contact sheet: auto (with ffmpeg, when it is on PATH), off, or the path of an ffmpeg program"
        case .webhookURL: "public https URL that reaches this daemon's --http listener (through a proxy or tunnel); fal then POSTs each request's end there, signed, and the job is fetched at once (default: off; polling and the status stream still run)"
        case .webhookKeysURL: "where fal's webhook signing keys are published (default: fal's, or the emulator's with --fal-url)"
        case .streamSilence: "a status stream silent this long (or 1.5 × the expected run time, if longer) counts as down: poll, and reopen it"
        case .onComplete: "command run after each job completes (video and manifest written), with KLING_BATCH_VIDEO, _MANIFEST, _BATCH, _JOB, _REQUEST_ID and _META set; retried on failure, never fails the job"
        case .hooks: "named commands a spec may choose with on_complete: NAME (config: a mapping of names to commands); a spec never gives a command itself"
        case .onCompleteShell: "run on_complete and hooks through /bin/sh -c (default: split into words, no shell)"
        case .onCompleteTimeout: "how long one run of an on_complete hook may take before it is killed"
        case .onCompleteConcurrency: "on_complete hooks running at once"
        case .onCompleteRetry: "first wait before a failed on_complete hook runs again; it doubles, up to 10m, for 5 runs in all"
        case .notifyRetry: "first wait before a failed notification is tried again; it doubles, up to 10m, for 24 hours"
        case .stallAfter: "a job at fal whose state has not moved for this long is told as stalled (notify)"
        case .http: "address for /metrics, /healthz and the webhook_url path, e.g. 127.0.0.1:9464 (default: off)"
        case .logLevel: "trace, debug, info, notice, warning, error or critical"
        case .logFormat: "text, json or journal (default: journal under systemd, else text)"
        }
    }
}
