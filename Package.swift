// swift-tools-version:6.1
import PackageDescription

/// Layout (DESIGN.md section 7): `Shared/` holds what more than one service uses, `Services/<Name>/`
/// holds one service as a library (`Service/`) plus a thin executable (`Main/`).
let package = Package(
    name: "MarketplaceOnboarding",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "identity", targets: ["identity"]),
        .executable(name: "organization", targets: ["organization"]),
        .executable(name: "marketplace-link", targets: ["marketplace-link"]),
        .executable(name: "console", targets: ["console"]),
        .executable(name: "aws-marketplace-sim", targets: ["aws-marketplace-sim"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.3.0")
    ],
    targets: [
        // MARK: HTTP/2 engine: the only place that touches libnghttp2's C API.
        .systemLibrary(
            name: "CNGHTTP2",
            path: "Shared/CNGHTTP2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]
        ),
        .target(
            name: "NGHTTP2",
            dependencies: [
                "CNGHTTP2",
                .product(name: "NIOCore", package: "swift-nio")
            ],
            path: "Shared/NGHTTP2"
        ),

        // MARK: RPC core: method declarations, errors, call context, proto3 JSON. No HTTP/2 in here.
        .target(
            name: "RPCCore",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio")
            ],
            path: "Shared/RPCCore"
        ),

        // MARK: The shared model: every RPC declared once, with its messages.
        .target(
            name: "Contracts",
            dependencies: ["RPCCore"],
            path: "Shared/Contracts"
        ),

        // MARK: Access tokens: ES256 JWTs identity signs and every service verifies with its published keys.
        .target(
            name: "AccessTokens",
            dependencies: ["Contracts", .product(name: "Crypto", package: "swift-crypto")],
            path: "Shared/AccessTokens"
        ),

        // MARK: Connect protocol over HTTP/2 (nghttp2) and HTTP/1.1 (NIOHTTP1), server and client.
        .target(
            name: "ConnectTransport",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                "NGHTTP2",
                "RPCCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing")
            ],
            path: "Shared/ConnectTransport"
        ),

        // MARK: AWS Marketplace seller APIs: SigV4, the JSON 1.1 protocol, metering and entitlements; SNS messages.
        .target(
            name: "AWSMarketplace",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing")
            ],
            path: "Shared/AWSMarketplace"
        ),

        // MARK: What every service process needs: configuration, logging, metrics, storage, lifecycle, health.
        .target(
            name: "ServiceRuntime",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"), .product(name: "NIOCore", package: "swift-nio"),
                "AccessTokens",
                "ConnectTransport",
                "Contracts",
                "RPCCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "AsyncHTTPClient", package: "async-http-client")
            ],
            path: "Shared/ServiceRuntime"
        ),

        // MARK: Services: a library holding everything the service does, and a thin executable.
        .target(
            name: "IdentityService",
            dependencies: [
                "ServiceRuntime", "Contracts", "AccessTokens", "RPCCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                "ConnectTransport", .product(name: "Tracing", package: "swift-distributed-tracing")
            ],
            path: "Services/Identity/Service"
        ),
        .executableTarget(name: "identity", dependencies: ["IdentityService", "ServiceRuntime"], path: "Services/Identity/Main"),
        .target(
            name: "OrganizationService",
            dependencies: [
                "ServiceRuntime", "Contracts", "RPCCore", "ConnectTransport", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Logging", package: "swift-log")
            ],
            path: "Services/Organization/Service"
        ),
        .executableTarget(name: "organization", dependencies: ["OrganizationService"], path: "Services/Organization/Main"),
        .target(
            name: "MarketplaceLinkService",
            dependencies: [
                "ServiceRuntime", "Contracts", "RPCCore", "ConnectTransport", "AccessTokens", "AWSMarketplace",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing")
            ],
            path: "Services/MarketplaceLink/Service"
        ),
        .executableTarget(
            name: "marketplace-link", dependencies: ["MarketplaceLinkService", "ServiceRuntime"], path: "Services/MarketplaceLink/Main"),

        // MARK: The look the console and the simulator's buyer pages share.
        .target(name: "WebLook", path: "Shared/WebLook"),

        // MARK: The web console: the buyer's pages, over the other services' RPCs; no database of its own.
        .target(
            name: "ConsoleService",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                "ServiceRuntime", "Contracts", "RPCCore", "ConnectTransport", "AccessTokens", "WebLook",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
            ],
            path: "Services/Console/Service"
        ),
        .executableTarget(name: "console", dependencies: ["ConsoleService"], path: "Services/Console/Main"),

        // MARK: Developer tools: the local stand-in for AWS Marketplace.
        .target(
            name: "AWSMarketplaceSimulator",
            dependencies: [
                .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"),
                "AWSMarketplace", "ServiceRuntime", "WebLook",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
            ],
            path: "Tools/AWSMarketplaceSim/Simulator"
        ),
        .executableTarget(
            name: "aws-marketplace-sim",
            dependencies: ["AWSMarketplaceSimulator"],
            path: "Tools/AWSMarketplaceSim/Main"
        ),

        // MARK: Tests
        .target(
            name: "TestSupport",
            dependencies: [
                "NGHTTP2", .product(name: "NIOCore", package: "swift-nio"), .product(name: "Prometheus", package: "swift-prometheus"),
                "ConnectTransport", "RPCCore", "Contracts", "ServiceRuntime",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio")
            ],
            path: "Tests/TestSupport"
        ),
        // A running identity for the suites of the services that call it; apart from TestSupport,
        // which links no service.
        .target(
            name: "IdentityTestSupport",
            dependencies: [
                "TestSupport", "IdentityService", "ConnectTransport", "Contracts", "RPCCore", "ServiceRuntime",
                .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Logging", package: "swift-log")
            ],
            path: "Tests/IdentityTestSupport"
        ),
        .testTarget(
            name: "NGHTTP2Tests",
            dependencies: ["NGHTTP2", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/NGHTTP2Tests"
        ),
        .testTarget(
            name: "RPCCoreTests",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"), "RPCCore", "Contracts"
            ],
            path: "Tests/RPCCoreTests"
        ),
        .testTarget(
            name: "ConnectTransportTests",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"), "ConnectTransport", "RPCCore", "Contracts", "TestSupport",
                .product(name: "Logging", package: "swift-log"), .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing")
            ],
            path: "Tests/ConnectTransportTests"
        ),
        .testTarget(
            name: "AWSMarketplaceTests",
            dependencies: [
                .product(name: "Logging", package: "swift-log"), "AWSMarketplace", "TestSupport"
            ],
            path: "Tests/AWSMarketplaceTests"
        ),
        .testTarget(
            name: "AWSMarketplaceSimulatorTests",
            dependencies: ["AWSMarketplace", "TestSupport", "aws-marketplace-sim"],
            path: "Tests/AWSMarketplaceSimulatorTests"
        ),
        .testTarget(
            name: "IdentityServiceTests",
            dependencies: [
                "IdentityTestSupport",
                "RPCCore", "ServiceRuntime", "IdentityService", "AccessTokens", "ConnectTransport", "Contracts", "TestSupport",
                .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Crypto", package: "swift-crypto")
            ],
            path: "Tests/IdentityServiceTests"
        ),
        .testTarget(
            name: "OrganizationServiceTests",
            dependencies: [
                "IdentityTestSupport",
                "RPCCore", "ServiceRuntime", .product(name: "Logging", package: "swift-log"), "OrganizationService", "IdentityService",
                "AccessTokens", "ConnectTransport", "Contracts", "TestSupport",
                .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Crypto", package: "swift-crypto")
            ],
            path: "Tests/OrganizationServiceTests"
        ),
        .testTarget(
            name: "MarketplaceLinkServiceTests",
            dependencies: [
                "IdentityTestSupport",
                "RPCCore", "ServiceRuntime", .product(name: "Logging", package: "swift-log"), "MarketplaceLinkService", "OrganizationService",
                "IdentityService", "AWSMarketplace", "ConnectTransport",
                "Contracts", "AccessTokens", "TestSupport", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift")
            ],
            path: "Tests/MarketplaceLinkServiceTests"
        ),
        .testTarget(
            name: "ConsoleServiceTests",
            dependencies: ["ConsoleService", "WebLook", "Contracts", "RPCCore", "TestSupport"],
            path: "Tests/ConsoleServiceTests"
        ),
        .testTarget(
            name: "ServiceRuntimeTests",
            dependencies: [
                "RPCCore", .product(name: "GRDB", package: "GRDB.swift"), "ServiceRuntime", "ConnectTransport", "Contracts", "TestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing")
            ],
            path: "Tests/ServiceRuntimeTests"
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "RPCCore", .product(name: "NIOCore", package: "swift-nio"),
                "TestSupport", "ConnectTransport", "Contracts", "AccessTokens",
                "identity", "organization", "marketplace-link", "aws-marketplace-sim", "console"
            ],
            path: "Tests/EndToEndTests"
        )
    ]
)
