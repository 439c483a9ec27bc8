import ConnectTransport
import ServiceRuntime

/// Something a test starts and must stop before it ends: a server, a harness, a child process,
/// a client's connection.
public protocol TestFixture: Sendable {
    func stop() async
}

/// Runs `body` with a fixture just started, then stops the fixture, whether `body` returned or
/// threw: what a test starts, the test stops, before it reports.
///
///     try await withStarted(IdentityHarness.start()) { identity in ... }
public func withStarted<Fixture: TestFixture, Result>(
    _ fixture: Fixture, _ body: (Fixture) async throws -> Result
) async throws -> Result {
    let result: Result
    do {
        result = try await body(fixture)
    } catch {
        await fixture.stop()
        throw error
    }
    await fixture.stop()
    return result
}

extension TestServer: TestFixture {}
extension ChildProcess: TestFixture {}
extension ConsoleSystem: TestFixture {}
extension SimulatorProcess: TestFixture {}

extension ConnectClient: TestFixture {
    public func stop() async { await close() }
}

extension ServiceHost: TestFixture {
    /// Starts the host on a free loopback port, or without one (only its background work) to be
    /// called in-process; returns the port (0 without one) and how callers reach it.
    public func start(listening: Bool) async throws -> (port: Int, upstream: Upstream) {
        guard listening else {
            try await startInProcess()
            return (0, .inProcess(endpoint))
        }
        let port = try await start().port!
        return (port, .url("http://127.0.0.1:\(port)"))
    }

    /// Tests drain quickly: nothing they run has long calls in flight at the end.
    public func stop() async { await shutdown(timeout: .seconds(2)) }
}
