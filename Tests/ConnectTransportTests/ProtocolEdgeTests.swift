import ConnectTransport
import Foundation
import RPCCore
import TestSupport
import Testing

/// The Connect protocol's edges, seen from real clients over real sockets.
@Suite(.timeLimit(.minutes(3))) struct ProtocolEdgeTests {
    static let echo = "/test.v1.Echo/Echo"

    private func echoBody(textBytes: Int) -> Data {
        Data(#"{"text":"\#(String(repeating: "a", count: textBytes))"}"#.utf8)
    }

    @Test func bodiesOfZeroOneKiBAndHundredKiBWorkAndTwoMiBIsRefused() async throws {
        try await withStarted(TestServer.start()) { server in
            let empty = try await Curl.post(server.baseURL + "/grpc.health.v1.Health/Check", body: "", extra: ["--http2-prior-knowledge"])
            #expect(empty.status == 200 && empty.body.contains("SERVING"))
            for size in [1024, 100 * 1024] {
                for version in ["--http2-prior-knowledge", "--http1.1"] {
                    let file = try temporaryFile(echoBody(textBytes: size - 12))
                    let reply = try await Curl.post(server.baseURL + Self.echo, bodyFile: file, extra: [version])
                    #expect(reply.status == 200, "\(size) \(version): \(reply.body.prefix(200))")
                    #expect(reply.body.contains(String(repeating: "a", count: size - 12)))
                }
            }
            for version in ["--http2-prior-knowledge", "--http1.1"] {
                let file = try temporaryFile(echoBody(textBytes: 2 << 20))
                let reply = try await Curl.post(server.baseURL + Self.echo, bodyFile: file, extra: [version])
                #expect(reply.status == 429, "\(version)")
                #expect(reply.body.contains(#""code":"resource_exhausted""#))
                #expect(reply.body.contains("exceeds 1048576 bytes"))
            }
            // The server is still there.
            let after = try await Curl.post(server.baseURL + Self.echo, body: #"{"text":"still here"}"#, extra: ["--http2-prior-knowledge"])
            #expect(after.status == 200)
        }
    }

    @Test func http1BodyAnnouncedOverTheLimitIsRefusedBeforeItIsSent() async throws {
        try await withStarted(TestServer.start()) { server in
            let result = try await ExternalCommand.run(
                ["python3", Fixtures.path("py_clients.py"), "declare-large", "127.0.0.1", String(server.port), Self.echo])
            #expect(result.stdout.contains(#""statusLine": "HTTP/1.1 429 Too Many Requests""#), "\(result.stdout) \(result.stderr)")
            #expect(result.stdout.contains("resource_exhausted"))
        }
    }

    @Test func responseLargerThanTheInitialWindowArrivesWhole() async throws {
        try await withStarted(TestServer.start()) { server in
            let reply = try await Curl.post(server.baseURL + Self.echo, body: #"{"text":"x","padTo":300000}"#, extra: ["--http2-prior-knowledge"])
            #expect(reply.status == 200)
            #expect(reply.body.utf8.count > 300_000)
            let client = try server.client()
            let response = try await client.call(Echo.echo, EchoRequest(text: "y", padTo: 500_000))
            #expect(response.text.utf8.count == 500_000)
            await client.close()
        }
    }

    @Test func wrongContentTypeUnknownMethodAndBadJSONGetConnectErrors() async throws {
        try await withStarted(TestServer.start()) { server in
            let url = server.baseURL
            let textPlain = try await Curl.post(url + Self.echo, body: "{}", contentType: "text/plain", extra: ["--http2-prior-knowledge"])
            #expect(textPlain.status == 415)
            #expect(textPlain.body.contains("application/json"))
            let unknown = try await Curl.post(url + "/nope.v1.Nothing/Here", body: "{}", extra: ["--http2-prior-knowledge"])
            #expect(unknown.status == 501)
            #expect(unknown.body.contains(#""code":"unimplemented""#))
            let malformed = try await Curl.post(url + Self.echo, body: "{\"text\":", extra: ["--http2-prior-knowledge"])
            #expect(malformed.status == 400)
            #expect(malformed.body.contains(#""code":"invalid_argument""#))
            let wrongType = try await Curl.post(url + Self.echo, body: #"{"text":42}"#, extra: ["--http2-prior-knowledge"])
            #expect(wrongType.status == 400)
            #expect(wrongType.body.contains("field 'text': expected a string"))
            let badVersion = try await Curl.post(url + Self.echo, body: "{}", extra: ["--http2-prior-knowledge", "-H", "connect-protocol-version: 7"])
            #expect(badVersion.status == 400)
            let badTimeout = try await Curl.post(url + Self.echo, body: "{}", extra: ["--http2-prior-knowledge", "-H", "connect-timeout-ms: -5"])
            #expect(badTimeout.status == 400 && badTimeout.body.contains("connect-timeout-ms"))
            let brotli = try await Curl.post(url + Self.echo, body: "{}", extra: ["--http2-prior-knowledge", "-H", "content-encoding: br"])
            #expect(brotli.status == 501 && brotli.body.contains("gzip"))
        }
    }

    @Test func expiredDeadlineIsDeadlineExceeded() async throws {
        try await withStarted(TestServer.start()) { server in
            let started = ContinuousClock.now
            let reply = try await Curl.post(
                server.baseURL + Self.echo, body: #"{"text":"slow","sleepMs":10000}"#,
                extra: ["--http2-prior-knowledge", "-H", "connect-timeout-ms: 200"])
            #expect(reply.status == 504)
            #expect(reply.body.contains(#""code":"deadline_exceeded""#))
            // Long before the handler's 10 s, even on a loaded machine.
            #expect(ContinuousClock.now - started < .seconds(5))
        }
    }

    @Test func gzipRequestsAndResponses() async throws {
        try await withStarted(TestServer.start()) { server in
            let plain = try temporaryFile(Data(#"{"text":"zipped","padTo":4000}"#.utf8))
            _ = try await ExternalCommand.run(["gzip", "-k", "-f", plain])
            let reply = try await Curl.post(
                server.baseURL + Self.echo, bodyFile: plain + ".gz",
                extra: ["--http2-prior-knowledge", "-H", "content-encoding: gzip", "--compressed"])
            #expect(reply.status == 200)
            #expect(reply.body.contains(#""text":"zipped"#))
            #expect(reply.headers.lowercased().contains("content-encoding: gzip"))
            // A small body stays 1 MiB compressed but grows past the limit once decompressed: refused.
            let bomb = try temporaryFile(Data(#"{"text":"\#(String(repeating: "b", count: 3 << 20))"}"#.utf8))
            _ = try await ExternalCommand.run(["gzip", "-k", "-f", bomb])
            let bombReply = try await Curl.post(
                server.baseURL + Self.echo, bodyFile: bomb + ".gz",
                extra: ["--http2-prior-knowledge", "-H", "content-encoding: gzip"])
            #expect(bombReply.status == 429)
            #expect(bombReply.body.contains("once decompressed"))
            let corrupt = try await Curl.post(
                server.baseURL + Self.echo, body: "not gzip at all",
                extra: ["--http2-prior-knowledge", "-H", "content-encoding: gzip"])
            #expect(corrupt.status == 400)
        }
    }

    @Test func garbageInsteadOfAPrefaceClosesThatConnectionOnly() async throws {
        try await withStarted(TestServer.start()) { server in
            let result = try await ExternalCommand.run(["python3", Fixtures.path("py_clients.py"), "garbage", "127.0.0.1", String(server.port)])
            #expect(result.stdout.contains(#""closed": true"#), "\(result.stdout) \(result.stderr)")
            let after = try await Curl.post(server.baseURL + "/grpc.health.v1.Health/Check", body: "{}", extra: ["--http2-prior-knowledge"])
            #expect(after.status == 200)
        }
    }

    @Test func connectionsOverTheLimitAreClosedAndTheServerCarriesOn() async throws {
        try await withStarted(TestServer.start(maxConnections: 2)) { server in
            // Two clients hold their connections open; a third connection is closed on arrival.
            let first = try server.client(), second = try server.client()
            _ = try await first.call(Echo.echo, EchoRequest(text: "1"))
            _ = try await second.call(Echo.echo, EchoRequest(text: "2"))
            // A valid call on a third connection gets no answer: curl reports an empty reply.
            await #expect(throws: ProcessFailure.self) {
                try await Curl.post(server.baseURL + Self.echo, body: #"{"text":"third"}"#, extra: ["--http2-prior-knowledge"])
            }
            await first.close()
            try await eventually {
                (try? await Curl.post(server.baseURL + Self.echo, body: #"{"text":"3"}"#, extra: ["--http2-prior-knowledge"]))?.status == 200
            }
            #expect(try await second.call(Echo.echo, EchoRequest(text: "still")).text == "still")
            await second.close()
        }
    }

    @Test func clientThatDisconnectsMidCallCancelsTheHandlerAndTheServerCarriesOn() async throws {
        try await withStarted(TestServer.start()) { server in
            let result = try await ExternalCommand.run(
                ["python3", Fixtures.path("py_clients.py"), "hangup", "127.0.0.1", String(server.port), Self.echo, #"{"text":"bye","sleepMs":3000}"#])
            #expect(result.status == 0, "\(result.stderr)")
            // The handler's sleep is cancelled long before its 3 s are up.
            var exposition = ""
            try await eventually {
                exposition = String(decoding: server.metrics.exposition(), as: UTF8.self)
                return exposition.contains(#"code="canceled""#)
            }
            #expect(exposition.contains(#"rpc_server_calls_total{method="/test.v1.Echo/Echo",code="canceled"} 1"#), "\(exposition)")
            let after = try await Curl.post(server.baseURL + Self.echo, body: #"{"text":"next"}"#, extra: ["--http2-prior-knowledge"])
            #expect(after.status == 200)
        }
    }

    @Test func thousandConcurrentCallsOverFourConnections() async throws {
        try await withStarted(TestServer.start()) { server in
            let clients = try (0..<4).map { _ in try server.client() }
            let succeeded = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<1000 {
                    let client = clients[index % 4]
                    group.addTask {
                        let reply = try await client.call(Echo.echo, EchoRequest(text: "call \(index)", sleepMs: 20))
                        return reply.text == "call \(index)"
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(succeeded == 1000)
            for client in clients { await client.close() }
        }
    }

    @Test func internalOnlyMethodNeedsAServiceCredential() async throws {
        try await withStarted(TestServer.start()) { server in
            let anonymous = try server.client()
            await #expect(throws: RPCError(.unauthenticated, "this method is internal-only: call it with a valid service credential")) {
                try await anonymous.call(Echo.internalEcho, EchoRequest(text: "x"))
            }
            let impostor = try server.client(credential: ServiceCredential(serviceName: "caller", secret: "wrong"))
            await #expect(throws: RPCError.self) { try await impostor.call(Echo.internalEcho, EchoRequest(text: "x")) }
            let trusted = try server.client(credential: ServiceCredential(serviceName: "caller", secret: TestServer.secret))
            let reply = try await trusted.call(Echo.internalEcho, EchoRequest(text: "x"), options: .init(bearerToken: "user-token"))
            #expect(reply.caller == "caller")
            // Handlers see who called, never the secrets that proved it.
            #expect(reply.headerNames?.contains("content-type") == true)
            #expect(reply.headerNames?.contains(serviceCredentialHeader) == false)
            #expect(reply.headerNames?.contains("authorization") == false)
            for client in [anonymous, impostor, trusted] { await client.close() }
        }
    }
}
