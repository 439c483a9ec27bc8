import ConnectTransport
import Foundation
import TestSupport
import Testing

/// Our server against HTTP clients we did not write: curl, nghttp, h2load, and Python's
/// pure-Python `h2` and `httpx` (not built on nghttp2), over h2c, HTTP/1.1 and TLS.
@Suite(.timeLimit(.minutes(3))) struct ThirdPartyClientTests {
    static let health = "/grpc.health.v1.Health/Check"

    @Test func curlOverH2CAndHTTP1() async throws {
        try await withStarted(TestServer.start()) { server in
            let h2 = try await Curl.post(server.baseURL + Self.health, body: "{}", extra: ["--http2-prior-knowledge"])
            #expect(h2.status == 200)
            #expect(h2.httpVersion == "2")
            #expect(h2.body == #"{"status":"SERVING"}"#)
            let h1 = try await Curl.post(server.baseURL + Self.health, body: "{}", extra: ["--http1.1"])
            #expect(h1.status == 200)
            #expect(h1.httpVersion == "1.1")
            #expect(h1.body == #"{"status":"SERVING"}"#)
            let probe = try await Curl.get(server.baseURL + "/healthz")
            #expect(probe.status == 200)
            #expect(probe.body == "ok\n")
            let probeH2 = try await Curl.get(server.baseURL + "/healthz", extra: ["--http2-prior-knowledge"])
            #expect(probeH2.status == 200 && probeH2.httpVersion == "2")
        }
    }

    @Test func nghttpCallsHealthCheck() async throws {
        try await withStarted(TestServer.start()) { server in
            let body = try temporaryFile(Data("{}".utf8))
            let result = try await ExternalCommand.run(
                [
                    "nghttp", "-d", body, "-H", "content-type: application/json", "-H", "connect-protocol-version: 1",
                    server.baseURL + Self.health
                ], timeout: .seconds(20))
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains(#"{"status":"SERVING"}"#))
        }
    }

    @Test func h2loadHasNoFailedRequestsAtHundredStreamsPerConnection() async throws {
        try await withStarted(TestServer.start()) { server in
            let body = try temporaryFile(Data("{}".utf8))
            let result = try await ExternalCommand.run(
                [
                    "h2load", "-n", "20000", "-c", "8", "-m", "100", "-d", body, "-H", "content-type: application/json",
                    server.baseURL + Self.health
                ], timeout: .seconds(120))
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("20000 succeeded, 0 failed, 0 errored"), "\(result.stdout)")
            #expect(result.stdout.contains("status codes: 20000 2xx"), "\(result.stdout)")
        }
    }

    @Test func pythonH2AndHTTPXClients() async throws {
        try await withStarted(TestServer.start()) { server in
            let script = Fixtures.path("py_clients.py")
            for mode in ["h2c", "http1"] {
                let result = try await ExternalCommand.run(
                    ["python3", script, mode, server.baseURL, "/test.v1.Echo/Echo", #"{"text":"hi from \#(mode)"}"#])
                #expect(result.status == 0, "\(result.stderr)")
                let reply = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
                #expect(reply?["status"] as? Int == 200)
                #expect((reply?["body"] as? String)?.contains("hi from \(mode)") == true)
                #expect(reply?["version"] as? String == (mode == "h2c" ? "HTTP/2" : "HTTP/1.1"))
            }
        }
    }

    @Test func tlsWithALPNForCurlAndHTTPX() async throws {
        let certificates = try await TestCertificates.make()
        try await withStarted(TestServer.start(tls: certificates.serverFiles(requireClientCertificate: false))) { server in
            let h2 = try await Curl.post(server.baseURL + Self.health, body: "{}", extra: ["--cacert", certificates.caPath, "--http2"])
            #expect(h2.status == 200 && h2.httpVersion == "2")
            let h1 = try await Curl.post(server.baseURL + Self.health, body: "{}", extra: ["--cacert", certificates.caPath, "--http1.1"])
            #expect(h1.status == 200 && h1.httpVersion == "1.1")
            let result = try await ExternalCommand.run(
                ["python3", Fixtures.path("py_clients.py"), "tls", server.baseURL, Self.health, "{}", certificates.caPath])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains(#""version": "HTTP/2""#))
            #expect(result.stdout.contains("SERVING"))
        }
    }
}

/// Paths of the scripts in `Tests/Fixtures`.
enum Fixtures {
    static func path(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/\(name)").path
    }
}
