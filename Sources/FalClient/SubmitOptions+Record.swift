import Foundation
import KlingCore

/// The submit headers as a job records them (and its manifest shows them): plain numbers and words, never the
/// webhook URL (which may carry a token), so the record can be shown to anyone who may read the manifest.
extension SubmitOptions {
    /// `{"output_lifetime_seconds": 604800, "queue_priority": "low", "start_timeout_seconds": 600}`; unset ones are null.
    public var recordJSON: JSONValue {
        [
            "output_lifetime_seconds": outputLifetime.map { .int($0.components.seconds) } ?? .null,
            "queue_priority": priority.map { .string($0.rawValue) } ?? .null,
            "start_timeout_seconds": startTimeout.map { .int($0.components.seconds) } ?? .null,
        ]
    }

    /// Reads `recordJSON` back; the webhook is not recorded and comes from the caller.
    public init(recordJSON record: JSONValue, webhookURL: URL? = nil) {
        self.init(
            webhookURL: webhookURL,
            startTimeout: record["start_timeout_seconds"]?.intValue.map { .seconds($0) },
            priority: record["queue_priority"]?.stringValue.flatMap(Priority.init(rawValue:)),
            outputLifetime: record["output_lifetime_seconds"]?.intValue.map { .seconds($0) })
    }
}
