import Foundation

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

/// Sleeps until just after the next multiple of `seconds` since 1970: the start of a metering hour
/// when hours are shortened, so what a test sends next has a whole hour before the hour closes.
public func waitForPeriodStart(seconds: Int) async throws {
    let now = Date().timeIntervalSince1970
    let next = (now / Double(seconds)).rounded(.down) * Double(seconds) + Double(seconds)
    try await Task.sleep(for: .milliseconds(Int64((next - now + 0.1) * 1000)))
}
