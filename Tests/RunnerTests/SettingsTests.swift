import Foundation
import KlingCore
@testable import Runner
import Testing
import TestSupport

@Suite("Configuration layers and the drop folder")
struct SettingsTests {
    @Test("flags win over the environment, which wins over the file, which wins over defaults")
    func precedence() throws {
        let folder = try TemporaryDirectory("settings")
        defer { folder.remove() }
        let file = folder.path + "/config.yaml"
        try "concurrency: 3\nmax_spend_per_day: 25\nsettle: 500ms\nlog-level: debug\n".write(toFile: file, atomically: true, encoding: .utf8)
        let layers = try ConfigurationLayers.load(
            flags: [.concurrency: "9"], explicitFile: file,
            processEnvironment: ["KLING_BATCH_CONCURRENCY": "7", "KLING_BATCH_MAX_SPEND_PER_DAY": "30", "KLING_BATCH_STATE_DIR": "/tmp/s"])
        #expect(layers.value(.concurrency)?.text == "9" && layers.value(.concurrency)?.source == .flag)
        #expect(layers.value(.maxSpendPerDay)?.text == "30" && layers.value(.maxSpendPerDay)?.source == .environment)
        #expect(layers.value(.settle)?.source == .file(file))
        #expect(layers.value(.logLevel)?.text == "debug", "a dash in a file key means the same as an underscore")
        #expect(layers.value(.rescanInterval)?.source == .defaultValue)
        #expect(layers.value(.maxSpendPerBatch) == nil)
        let settings = try EffectiveSettings(layers, processEnvironment: [:], currentDirectory: "/work")
        #expect(settings.runner.concurrency == 9)
        #expect(settings.runner.budget.perDay == USD(parsing: "30"))
        #expect(settings.runner.settle == .milliseconds(500))
        #expect(settings.runner.stateDirectory == "/tmp/s")
        #expect(settings.jobsDirectory == "/work/jobs")
    }

    @Test("a setting with no default and no value is an error naming where to set it, never a crash")
    func requiredWithoutDefault() throws {
        let read = SettingReader(layers: ConfigurationLayers(), currentDirectory: "/work")
        #expect(SettingKey.maxSpendPerBatch.defaultValue == nil && SettingKey.http.defaultValue == nil)
        for key in [SettingKey.maxSpendPerBatch, .http] {
            do {
                _ = try read.integer(key)
                Issue.record("\(key) has no value; reading it must throw")
            } catch let error as ConfigurationError {
                #expect(error.description.contains("must be set (\(key.flag), \(key.environmentName)"), "\(error)")
            }
            #expect(throws: ConfigurationError.self) { try read.duration(key) }
            #expect(throws: ConfigurationError.self) { try read.bytes(key) }
        }
        #expect(try read.dollars(.maxSpendPerBatch) == nil, "an optional amount left unset is no amount")
    }

    @Test("a fal URL learnt from the store is taken only for a loopback emulator, only when nothing chose one, and never with the real key")
    func storedEmulator() throws {
        let environment = ["FAL_KEY": "real-key-id:real-secret", "HOME": "/tmp"]
        var settings = try EffectiveSettings(ConfigurationLayers(), processEnvironment: environment)
        let remote = settings.useStoredEmulator("https://evil.example.com")
        #expect(!remote, "a store file must not steer the key to another host")
        #expect(settings.endpoints == .production)
        #expect(try settings.resolveKey(environment: environment).source != "default for the store's local emulator")
        let local = settings.useStoredEmulator("http://127.0.0.1:45678")
        #expect(local)
        #expect(settings.endpoints.queue.absoluteString == "http://127.0.0.1:45678")
        let key = try settings.resolveKey(environment: environment)
        #expect(key.source == "default for the store's local emulator", "the real key went to a URL nobody chose: \(key.source)")

        let chosen = try ConfigurationLayers.load(flags: [.falURL: "http://127.0.0.1:9"], explicitFile: nil, processEnvironment: environment)
        var flagged = try EffectiveSettings(chosen, processEnvironment: environment)
        let overridden = flagged.useStoredEmulator("http://127.0.0.1:45678")
        #expect(!overridden, "--fal-url given by hand wins")
        #expect(flagged.endpoints.queue.absoluteString == "http://127.0.0.1:9")
    }

    @Test("bad settings are refused naming where they came from")
    func errors() throws {
        let folder = try TemporaryDirectory("settings-bad")
        defer { folder.remove() }
        let file = folder.path + "/config.yaml"
        try "max_spend_per_dya: 25\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) { try ConfigurationLayers.readFile(file) }
        do { _ = try ConfigurationLayers.readFile(file) } catch let error as ConfigurationError {
            #expect(error.description.contains("did you mean `max_spend_per_day`"), "\(error)")
        }
        let layers = ConfigurationLayers(flags: [.concurrency: "0"], environment: [.settle: "soon"])
        do { _ = try EffectiveSettings(layers, processEnvironment: [:]); Issue.record("accepted concurrency 0") } catch let error as ConfigurationError {
            #expect(error.description.hasPrefix("--concurrency must be a whole number of at least 1"), "\(error)")
        }
        let environmentOnly = ConfigurationLayers(environment: [.settle: "soon"])
        do { _ = try EffectiveSettings(environmentOnly, processEnvironment: [:]); Issue.record("accepted settle 'soon'") } catch let error as ConfigurationError {
            #expect(error.description.hasPrefix("KLING_BATCH_SETTLE must be a duration"), "\(error)")
        }
        #expect(EffectiveSettings.parseAddress(":9464")! == ("127.0.0.1", 9464))
        #expect(EffectiveSettings.parseAddress("[::1]:80")! == ("::1", 80))
        #expect(EffectiveSettings.parseAddress("nowhere") == nil)
    }

    @Test("accepted and rejected files are moved, never over another, with the reasons beside rejected ones")
    func dropFolder() throws {
        let folder = try TemporaryDirectory("drop")
        defer { folder.remove() }
        let drop = try DropFolder(root: folder.path)
        let noon = ISO8601DateFormatter().date(from: "2026-11-25T12:00:00Z")!
        var moved: [String] = []
        for _ in 0..<2 {
            try "prompt: a".write(toFile: folder.path + "/a.yaml", atomically: true, encoding: .utf8)
            moved.append(try drop.archiveAccepted("a.yaml", now: noon))
        }
        #expect(moved.map { ($0 as NSString).lastPathComponent } == ["a.yaml", "a-2.yaml"])
        #expect(moved.allSatisfy { $0.contains("/accepted/") })
        try "prompt: ''".write(toFile: folder.path + "/b.yaml", atomically: true, encoding: .utf8)
        let rejected = try drop.archiveRejected("b.yaml", reasons: ["b.yaml:1:9: error: prompt: the prompt is empty"], now: noon)
        #expect(rejected == folder.path + "/rejected/b.yaml")
        let errors = try String(contentsOfFile: rejected + ".errors.txt", encoding: .utf8)
        #expect(errors.contains("the prompt is empty") && errors.contains("was rejected at 2026-11-25T12:00:00Z"))
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/b.yaml"))

        // An errors.txt left alone (its spec taken away to fix) keeps its name: the next b.yaml is b-2.yaml.
        try FileManager.default.removeItem(atPath: rejected)
        try "prompt: ''".write(toFile: folder.path + "/b.yaml", atomically: true, encoding: .utf8)
        let again = try drop.archiveRejected("b.yaml", reasons: ["again"], now: noon)
        #expect(again == folder.path + "/rejected/b-2.yaml")
        #expect(try String(contentsOfFile: rejected + ".errors.txt", encoding: .utf8).contains("the prompt is empty"))
        // A file that vanished before its move is an error, not a silent success.
        #expect(throws: (any Error).self) { try drop.archiveAccepted("gone.yaml", now: noon) }
    }

    @Test("inotify records are decoded: moved in, closed after write, overflow; directories skipped")
    func inotifyRecords() throws {
        func record(mask: UInt32, name: String) -> [UInt8] {
            var nameBytes = Array(name.utf8) + [0]
            while nameBytes.count % 16 != 0 { nameBytes.append(0) }
            var bytes: [UInt8] = []
            for value in [Int32(1)] { withUnsafeBytes(of: value) { bytes += $0 } }
            for value in [mask, UInt32(0), UInt32(name.isEmpty ? 0 : nameBytes.count)] { withUnsafeBytes(of: value) { bytes += $0 } }
            return bytes + (name.isEmpty ? [] : nameBytes)
        }
        let buffer = record(mask: 0x80, name: "a.yaml") + record(mask: 0x8, name: "b.yaml") + record(mask: 0x4000, name: "")
            + record(mask: 0x4000_0080, name: "sub")
        let events = buffer.withUnsafeBytes { Inotify.parse($0) }
        #expect(events == [.movedIn("a.yaml"), .closedAfterWrite("b.yaml"), .overflow])
    }
}
