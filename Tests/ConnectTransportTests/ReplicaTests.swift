import Contracts
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RPCCore
import TestSupport
import Testing

@testable import ConnectTransport

/// A replicated peer: a client spreads its calls over every URL it was given and over every
/// address of a host name, skips a replica that is down, and follows the name's addresses as they
/// change.
@Suite(.serialized, .timeLimit(.minutes(2))) struct ReplicaTests {
    /// Echo calls a server answered.
    private func calls(_ server: TestServer) -> Int {
        let text = String(decoding: server.metrics.exposition(), as: UTF8.self)
        return text.split(separator: "\n").filter { $0.hasPrefix("rpc_server_calls_total") && $0.contains("Echo/Echo") && $0.contains("\"ok\"") }
            .compactMap { Int($0.split(separator: " ").last ?? "") }.reduce(0, +)
    }

    private func echo(_ client: ConnectClient, times: Int) async throws {
        for index in 0..<times {
            #expect(try await client.call(Echo.echo, EchoRequest(text: "\(index)")).text == "\(index)")
        }
    }

    @Test func callsSpreadOverAListOfURLsAndSkipAReplicaThatIsDown() async throws {
        try await withStarted(TestServer.start()) { first in
            try await withStarted(TestServer.start()) { second in
                try await withStarted(ConnectClient(configuration: .init(baseURL: "\(first.baseURL), \(second.baseURL)"))) { client in
                    try await echo(client, times: 20)
                    #expect(client.replicaCount == 2)
                    #expect(calls(first) == 10 && calls(second) == 10, "round robin: \(calls(first)) and \(calls(second))")
                    await second.stop()
                    // Every call still succeeds: one that meets the stopped replica moves on to the other.
                    try await echo(client, times: 20)
                    #expect(calls(first) >= 29)
                }
            }
        }
    }

    /// A replica that stops answering (a real process under SIGSTOP: its connections stay open,
    /// nothing answers) costs one call its deadline; the calls after it go to the replica that
    /// answers first. Without that, every other call would wait out its deadline.
    @Test func aReplicaThatStopsAnsweringIsTriedAfterTheOthers() async throws {
        let base = NSTemporaryDirectory() + "stalled-replica-\(UUID().uuidString)"
        try await withStarted(ChildProcess(service: "organization", arguments: ["--port", "0", "--data-dir", base + "/a"])) { live in
            try await withStarted(ChildProcess(service: "organization", arguments: ["--port", "0", "--data-dir", base + "/b"])) { stalled in
                let urls = "http://127.0.0.1:\(live.port),http://127.0.0.1:\(stalled.port)"
                try await withStarted(ConnectClient(configuration: .init(baseURL: urls))) { client in
                    let options = ConnectClient.CallOptions(timeout: .seconds(1))
                    for _ in 0..<4 { _ = try await client.call(Health.check, HealthCheckRequest(), options: options) }
                    stalled.signal(SIGSTOP)
                    defer { stalled.signal(SIGCONT) }
                    var failures: [ConnectCode] = []
                    for _ in 0..<20 {
                        do {
                            _ = try await client.call(Health.check, HealthCheckRequest(), options: options)
                        } catch let error as RPCError {
                            failures.append(error.code)
                        }
                    }
                    #expect(failures == [.deadlineExceeded], "\(failures)")
                }
            }
        }
    }

    /// A rolling restart as a client sees it: the replica that was down is back, but its pool is
    /// still backing off after the connects that failed while it was down, when its peer goes down
    /// in turn. The calls that find the peer gone try the replica that came back, despite its
    /// backoff, instead of failing with the error of its last failed connect.
    @Test func aReplicaBackingOffIsTriedOnceItsPeerFailsTheCall() async throws {
        let port = try await freePort()
        try await withStarted(TestServer.start()) { first in
            let urls = "\(first.baseURL), http://127.0.0.1:\(port)"
            try await withStarted(ConnectClient(configuration: .init(baseURL: urls))) { client in
                // The second replica is down: every connect to it fails, and its backoff grows.
                let down = ContinuousClock.now + .seconds(3)
                while ContinuousClock.now < down {
                    try await echo(client, times: 1)
                    try await Task.sleep(for: .milliseconds(10))
                }
                try await withStarted(TestServer.start(port: port)) { second in
                    await first.stop()
                    try await echo(client, times: 10)
                    #expect(calls(second) == 10)
                }
            }
        }
    }

    @Test func everyAddressOfAHostNameIsAReplicaAndTheNameIsResolvedAgain() async throws {
        try await withStarted(TestServer.start(host: "127.0.0.2")) { a in
            try await withStarted(TestServer.start(host: "127.0.0.3", port: a.port)) { b in
                try await withStarted(TestServer.start(host: "127.0.0.4", port: a.port)) { c in
                    // What the name resolves to; a headless service's answer changes as replicas come and go.
                    let answer = NIOLockedValueBox(["127.0.0.2", "127.0.0.3"])
                    let client = try ConnectClient(
                        configuration: .init(baseURL: "http://replicas.test:\(a.port)"), group: MultiThreadedEventLoopGroup.singleton,
                        resolveInterval: .milliseconds(200), resolver: { name in name == "replicas.test" ? answer.withLockedValue { $0 } : [] })
                    try await withStarted(client) { client in
                        try await echo(client, times: 10)
                        #expect(calls(a) == 5 && calls(b) == 5 && calls(c) == 0)
                        answer.withLockedValue { $0 = ["127.0.0.3", "127.0.0.4"] }
                        try await Task.sleep(for: .milliseconds(300))
                        try await echo(client, times: 10)
                        #expect(calls(a) == 5, "the address that left gets no more calls")
                        #expect(calls(c) >= 4 && calls(b) + calls(c) == 15)
                        #expect(client.replicaCount == 2)
                    }
                }
            }
        }
    }

    @Test func concurrentFirstCallsAllWaitForTheFirstResolution() async throws {
        try await withStarted(TestServer.start()) { server in
            let client = try ConnectClient(
                configuration: .init(baseURL: "http://slow-name.test:\(server.port)"), group: MultiThreadedEventLoopGroup.singleton,
                resolveInterval: .seconds(30),
                resolver: { _ in
                    try? await Task.sleep(for: .milliseconds(100))
                    return ["127.0.0.1"]
                })
            try await withStarted(client) { client in
                let answered = try await withThrowingTaskGroup(of: String.self) { group in
                    for index in 0..<16 {
                        group.addTask { try await client.call(Echo.echo, EchoRequest(text: "\(index)")).text }
                    }
                    return try await group.reduce(into: [String]()) { $0.append($1) }
                }
                #expect(answered.count == 16)
                #expect(client.replicaCount == 1, "one endpoint however many callers resolved at once")
            }
        }
    }

    @Test func theSystemResolverFindsLocalhost() async throws {
        #expect(await UpstreamGroup.systemResolver("localhost").contains("127.0.0.1"))
    }
}
