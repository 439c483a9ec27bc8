import ConnectTransport
import Foundation
import RPCCore
import TestSupport
import Testing

/// The client engine against our server and against a Python `h2` server we did not write.
@Suite(.timeLimit(.minutes(3))) struct ClientEngineTests {
    @Test func reconnectsAfterTheServerRestarts() async throws {
        let first = try await TestServer.start()
        let port = first.port
        let client = try first.client()
        #expect(try await client.call(Echo.echo, EchoRequest(text: "one")).text == "one")
        await first.stop()
        await #expect(throws: RPCError.self) { try await client.call(Echo.echo, EchoRequest(text: "down")) }
        try await withStarted(TestServer.start(port: port)) { second in
            // Backoff after the failed connect is at most 2 s; calls succeed once it has passed.
            var reply: EchoResponse?
            try await eventually(timeout: .seconds(6)) {
                reply = try? await client.call(Echo.echo, EchoRequest(text: "two"))
                return reply != nil
            }
            #expect(reply?.text == "two")
            await client.close()
        }
    }

    @Test func reconnectsToAnIndependentServerAfterItRestarts() async throws {
        let first = try await ChildProcess(pythonFixture: "h2_echo_server.py", arguments: [])
        let port = first.port
        let client = try ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(port)"))
        #expect(try await client.call(Echo.echo, EchoRequest(text: "py one")).text == "py one")
        await first.stop()
        try await withStarted(ChildProcess(pythonFixture: "h2_echo_server.py", arguments: ["--port", String(port)])) { second in
            var reply: EchoResponse?
            try await eventually(timeout: .seconds(6)) {
                reply = try? await client.call(Echo.echo, EchoRequest(text: "py two"))
                return reply != nil
            }
            #expect(reply?.text == "py two")
            await client.close()
        }
    }

    @Test func goAwayDuringTrafficLosesNoCall() async throws {
        // The server sends GOAWAY after every 25th request on a connection and keeps accepting new
        // connections: calls it did not start must be retried on a new connection, not lost.
        try await withStarted(ChildProcess(pythonFixture: "h2_echo_server.py", arguments: ["--goaway-after", "25"])) { server in
            let client = try ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(server.port)", maxAttempts: 10))
            let results = await withTaskGroup(of: Result<String, RPCError>.self) { group in
                for index in 0..<300 {
                    group.addTask {
                        do throws(RPCError) {
                            return .success(try await client.call(Echo.echo, EchoRequest(text: "\(index)", sleepMs: 5)).text)
                        } catch {
                            return .failure(error)
                        }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            let failures = results.compactMap { if case .failure(let error) = $0 { error } else { nil } }
            #expect(failures.isEmpty, "\(failures.prefix(5))")
            #expect(Set(results.compactMap { try? $0.get() }).count == 300)
            await client.close()
        }
    }

    @Test func deadlineIsSentAndEnforcedLocally() async throws {
        // Against the Python server, which ignores connect-timeout-ms: the client must give up itself.
        try await withStarted(ChildProcess(pythonFixture: "h2_echo_server.py", arguments: [])) { server in
            let client = try ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(server.port)"))
            let started = ContinuousClock.now
            do {
                _ = try await client.call(Echo.echo, EchoRequest(text: "slow", sleepMs: 10_000), options: .init(timeout: .milliseconds(200)))
                Issue.record("a slow call beat its deadline")
            } catch let error as RPCError {
                #expect(error.code == .deadlineExceeded)
            }
            // Long before the server's 10 s, even on a loaded machine.
            #expect(ContinuousClock.now - started < .seconds(5))
            // Against our server the deadline travels as connect-timeout-ms and the server enforces it.
            try await withStarted(TestServer.start()) { ours in
                let ourClient = try ours.client()
                do {
                    _ = try await ourClient.call(Echo.echo, EchoRequest(text: "slow", sleepMs: 10_000), options: .init(timeout: .milliseconds(300)))
                    Issue.record("a slow call beat its deadline")
                } catch let error as RPCError {
                    #expect(error.code == .deadlineExceeded)
                }
                // The connection is still good for the next call.
                #expect(try await client.call(Echo.echo, EchoRequest(text: "fast")).text == "fast")
                await client.close()
                await ourClient.close()
            }
        }
    }

    @Test func deadlineCoversConnecting() async throws {
        try await withStarted(ChildProcess(pythonFixture: "blackhole_server.py", arguments: [])) { blackhole in
            let client = try ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(blackhole.port)", connectTimeout: .seconds(30)))
            let started = ContinuousClock.now
            do {
                _ = try await client.call(Echo.echo, EchoRequest(text: "nobody home"), options: .init(timeout: .milliseconds(300)))
                Issue.record("a call to a host that never answers succeeded")
            } catch let error as RPCError {
                #expect(error.code == .deadlineExceeded, "\(error)")
            }
            #expect(ContinuousClock.now - started < .seconds(5))
            await client.close()
        }
    }

    @Test func cancellingTheTaskResetsTheStream() async throws {
        try await withStarted(TestServer.start()) { server in
            let client = try server.client()
            let text = "forever \(UUID())"
            let call = Task { try await client.call(Echo.echo, EchoRequest(text: text, sleepMs: 10_000)) }
            #expect(try await eventually { Echo.hasStarted(text) })
            call.cancel()
            let result = await call.result
            #expect(throws: RPCError(.canceled, "the call was canceled")) { try result.get() }
            // The server saw the reset: its handler was cancelled, not left running.
            #expect(try await eventually { String(decoding: server.metrics.exposition(), as: UTF8.self).contains(#"code="canceled""#) })
            #expect(try await client.call(Echo.echo, EchoRequest(text: "after")).text == "after")
            await client.close()
        }
    }

    @Test func cancellingTheTaskResetsTheStreamOnAnIndependentServer() async throws {
        try await withStarted(ChildProcess(pythonFixture: "h2_echo_server.py", arguments: [])) { server in
            let client = try ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(server.port)"))
            let stats = { () async throws -> [String: Int] in
                let reply = try await Curl.get("http://127.0.0.1:\(server.port)/stats", extra: ["--http2-prior-knowledge"])
                return (try JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Int]) ?? [:]
            }
            let call = Task { try await client.call(Echo.echo, EchoRequest(text: "forever", sleepMs: 10_000)) }
            #expect(try await eventually { try await stats()["started"] == 1 })
            call.cancel()
            let result = await call.result
            #expect(throws: RPCError(.canceled, "the call was canceled")) { try result.get() }
            #expect(try await eventually { try await stats()["reset"] == 1 })
            #expect(try await client.call(Echo.echo, EchoRequest(text: "after")).text == "after")
            await client.close()
        }
    }

    @Test func peerStreamLimitIsHonouredByQueueing() async throws {
        try await withStarted(TestServer.start(maxConcurrentStreams: 4)) { server in
            let client = try server.client()
            _ = try await client.call(Echo.echo, EchoRequest(text: "settings"))  // learn the peer's SETTINGS
            let count = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<100 {
                    group.addTask { try await client.call(Echo.echo, EchoRequest(text: "\(index)", sleepMs: 10)).text.count }
                }
                return try await group.reduce(0) { count, _ in count + 1 }
            }
            #expect(count == 100)
            await client.close()
        }
    }

    @Test func errorsArriveTypedIncludingNonConnectResponses() async throws {
        try await withStarted(TestServer.start()) { server in
            let client = try server.client()
            await #expect(throws: RPCError(.permissionDenied, "asked to fail")) {
                try await client.call(Echo.echo, EchoRequest(text: "x", failWith: "permission_denied"))
            }
            // A method the server lacks: the server's own Connect error.
            let missing = RPCMethod<EchoRequest, EchoResponse>(service: "test.v1.Echo", name: "Missing")
            do {
                _ = try await client.call(missing, EchoRequest(text: "x"))
            } catch let error as RPCError {
                #expect(error.code == .unimplemented)
            }
            await client.close()
            // nghttpd serves files, not Connect: a 404 without a Connect body is inferred as unimplemented.
            let root = NSTemporaryDirectory() + "nghttpd-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            let port = try await freePort()
            try await withStarted(
                ChildProcess(
                    name: "nghttpd", executable: URL(fileURLWithPath: "/usr/sbin/nghttpd"),
                    arguments: ["--no-tls", "-d", root, "-a", "127.0.0.1", String(port), "-v"], environment: [:], readyWithin: .seconds(10)
                ) { log in
                    log.isEmpty ? nil : port  // nghttpd -v logs once it listens
                }
            ) { nghttpd in
                let foreign = try ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(nghttpd.port)"))
                await #expect(throws: RPCError(.unimplemented, "HTTP status 404 without a Connect error body")) {
                    try await foreign.call(Echo.echo, EchoRequest(text: "x"))
                }
                await foreign.close()
            }
        }
    }

    @Test func tlsWithClientCertificateIdentifiesTheCallingService() async throws {
        let certificates = try await TestCertificates.make()
        try await withStarted(TestServer.start(tls: certificates.serverFiles(requireClientCertificate: true))) { server in
            let withCertificate = try server.client(
                tls: TLSClientSettings(
                    trustedCAPath: certificates.caPath, clientCertificatePath: certificates.clientCertificatePath,
                    clientPrivateKeyPath: certificates.clientKeyPath))
            let reply = try await withCertificate.call(Echo.internalEcho, EchoRequest(text: "mtls"))
            #expect(reply.caller == "caller")
            let withoutCertificate = try server.client(tls: TLSClientSettings(trustedCAPath: certificates.caPath))
            await #expect(throws: RPCError.self) { try await withoutCertificate.call(Echo.echo, EchoRequest(text: "no cert")) }
            // curl with the client certificate, over TLS + ALPN h2.
            let curl = try await Curl.post(
                server.baseURL + "/test.v1.Echo/InternalEcho", body: #"{"text":"curl"}"#,
                extra: [
                    "--http2", "--cacert", certificates.caPath, "--cert", certificates.clientCertificatePath,
                    "--key", certificates.clientKeyPath
                ])
            #expect(curl.status == 200 && curl.httpVersion == "2")
            #expect(curl.body.contains(#""caller":"caller""#))
            await withCertificate.close()
            await withoutCertificate.close()
        }
    }
}
