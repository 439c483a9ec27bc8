/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns whether it held.
/// Tests wait for evidence this way instead of sleeping a fixed time.
@discardableResult
public func eventually(timeout: Duration = .seconds(5), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}
