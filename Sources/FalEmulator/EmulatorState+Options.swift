extension EmulatorState {
    /// Counts a submit's option headers by name and value (the webhook URL is counted by name only: it may carry
    /// a token), for `EmulatorCounters.submitHeaders`.
    func countSubmitHeaders(_ options: [String: String]) {
        for (name, value) in options {
            tallies.submitHeaders[name == "fal_webhook" ? name : "\(name): \(value)", default: 0] += 1
        }
    }
}
