// swift-tools-version: 6.1
// KlingBatch: a batch runner daemon for fal.ai's Kling O1 reference-to-video endpoint.
// Linux only: the runner uses inotify, sd_notify, /proc/self/fd and Glibc directly (see Sources/Runner/Platform.swift).
import PackageDescription

let package = Package(
    name: "kling-batch",
    products: [
        .executable(name: "kling-batch", targets: ["kling-batch"]),
        .executable(name: "fal-emulator", targets: ["fal-emulator"]),
        .library(name: "KlingCore", targets: ["KlingCore"]),
        .library(name: "KlingSpec", targets: ["KlingSpec"]),
        .library(name: "FalClient", targets: ["FalClient"]),
        .library(name: "FalEmulator", targets: ["FalEmulator"]),
        .library(name: "JobStore", targets: ["JobStore"]),
        .library(name: "Runner", targets: ["Runner"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        // Shared vocabulary with no I/O: JSON values, money, redaction.
        .target(name: "KlingCore"),

        // Job spec files: YAML decoding, validation, image header checks. Pure, no network.
        .target(
            name: "KlingSpec",
            dependencies: [
                "KlingCore",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),

        // fal queue, storage and platform API client with typed errors and streaming download.
        .target(
            name: "FalClient",
            dependencies: [
                "KlingCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),

        // The durable queue: SQLite through GRDB, one façade whose writes keep the invariants.
        .target(
            name: "JobStore",
            dependencies: ["KlingCore", .product(name: "GRDB", package: "GRDB.swift")]
        ),

        // The services that run jobs: dispatcher, executors, reconciler, downloader, manifests, budget.
        .target(
            name: "Runner",
            dependencies: [
                "KlingCore",
                "KlingSpec",
                "FalClient",
                "JobStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),

        // A faithful, fault-injecting stand-in for fal's queue, storage, platform API and file hosts.
        .target(
            name: "FalEmulator",
            dependencies: [
                "KlingCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),

        .executableTarget(
            name: "fal-emulator",
            dependencies: [
                "FalEmulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "kling-batch",
            dependencies: [
                "KlingCore",
                "KlingSpec",
                "FalClient",
                "FalEmulator",
                "JobStore",
                "Runner",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),

        // Helpers shared by the test targets: emulator harness, child processes, MP4 inspection.
        .target(
            name: "TestSupport",
            dependencies: [
                "FalClient",
                "KlingCore",
                "FalEmulator",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "KlingCoreTests",
            dependencies: ["KlingCore"]
        ),
        .testTarget(
            name: "KlingSpecTests",
            dependencies: ["KlingSpec", "KlingCore", "TestSupport"],
            resources: [.copy("Corpus")]
        ),
        .testTarget(
            name: "JobStoreTests",
            dependencies: ["JobStore", "KlingCore", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(
            name: "RunnerTests",
            dependencies: [
                "Runner", "JobStore", "FalClient", "FalEmulator", "KlingCore", "KlingSpec", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "TestSupport", "FalEmulator", "KlingCore", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "FalClientTests",
            dependencies: [
                "FalClient",
                "TestSupport",
                "FalEmulator",
                "KlingCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "FalEmulatorTests",
            dependencies: [
                "FalEmulator",
                "TestSupport",
                "KlingCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
    ]
)
