import FalClient
import Foundation
import GRDB
@testable import JobStore
import Logging
@testable import Runner
import Testing
import TestSupport

@Suite("The jobs-folder watcher")
struct SpecWatcherTests {
    @Test("files the store refuses stay in the folder, and a rescan accepts them once it takes them again")
    func storeRefusal() async throws {
        let folder = try TemporaryDirectory("watcher")
        defer { folder.remove() }
        var configuration = fastConfiguration(in: folder)
        configuration.settle = .zero
        configuration.rescanInterval = .seconds(3600)
        let http = FalClient.makeHTTPClient()
        let client = FalClient(http: http, endpoints: .init(baseURL: URL(string: "http://127.0.0.1:9")!), key: EmulatorHarness.key, logger: quietLogger())
        let fixture = try RunnerFixture(in: folder, specs: 3, configuration: configuration, client: client)
        let (store, environment, jobs, specs) = (fixture.store, fixture.environment, fixture.jobs, fixture.specPaths)
        // A store that refuses every new batch, as a full disk would.
        try await store.writer.write { db in
            try db.execute(sql: "CREATE TRIGGER refuse BEFORE INSERT ON batch BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
        }
        let (readyStream, ready) = AsyncStream.makeStream(of: Void.self)
        let watcher = SpecWatcher(folder: jobs.path, ingestor: fixture.ingestor, environment: environment, onReady: { ready.yield() })
        let running = Task { try await watcher.run() }

        // The first scan tried every file before announcing itself ready.
        var readiness = readyStream.makeAsyncIterator()
        _ = await readiness.next()
        #expect(try store.batches().isEmpty)
        #expect(specs.allSatisfy { FileManager.default.fileExists(atPath: $0) }, "a refused file must stay where it was dropped")

        try await store.writer.write { db in try db.execute(sql: "DROP TRIGGER refuse") }
        watcher.rescan()
        let deadline = ContinuousClock.now + .seconds(30)
        while try store.batches().count < 3, ContinuousClock.now < deadline {
            await environment.doorbell.wait(until: deadline)
        }
        running.cancel()
        _ = try? await running.value
        try await http.shutdown()

        #expect(try store.batches().map(\.name).sorted() == ["job-0", "job-1", "job-2"])
        #expect(specs.allSatisfy { !FileManager.default.fileExists(atPath: $0) })
        let day = OutputLayout.day(of: Date())
        let archived = try FileManager.default.contentsOfDirectory(atPath: jobs.path + "/accepted/" + day).sorted()
        #expect(archived == specs.map { ($0 as NSString).lastPathComponent }.sorted())
    }

    @Test("a folder of many files is taken a chunk at a time: each chunk is in the store and handed on before the next is read")
    func chunks() async throws {
        let folder = try TemporaryDirectory("intake-chunks")
        defer { folder.remove() }
        let http = FalClient.makeHTTPClient()
        let client = FalClient(http: http, endpoints: .init(baseURL: URL(string: "http://127.0.0.1:9")!), key: EmulatorHarness.key, logger: quietLogger())
        let count = DropFolderIntake.chunkSize * 2 + 2
        let fixture = try RunnerFixture(in: folder, specs: count, configuration: fastConfiguration(in: folder), client: client)
        let drop = try DropFolder(root: fixture.jobs.path)
        var handed: [(files: Int, accepted: Int, inStore: Int, stillDropped: Int)] = []
        await DropFolderIntake(ingestor: fixture.ingestor, logger: quietLogger()).take(DropFolderIntake.names(in: drop), from: drop) { chunk in
            let inStore = (try? fixture.store.batches().count) ?? -1
            handed.append((chunk.count, chunk.filter(\.accepted).count, inStore, DropFolderIntake.names(in: drop).count))
        }
        try await http.shutdown()
        let size = DropFolderIntake.chunkSize
        #expect(handed.map(\.files) == [size, size, 2])
        #expect(handed.map(\.accepted) == [size, size, 2])
        #expect(handed.map(\.inStore) == [size, 2 * size, count], "each chunk is committed before it is handed on")
        #expect(handed.map(\.stillDropped) == [size + 2, 2, 0], "the next chunk is not read before the handler returns")
    }
}
