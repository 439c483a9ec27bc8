import Foundation
import Logging
import NIOCore
import NIOEmbedded
import TestSupport
import Testing

@testable import ConnectTransport

/// Running out of file descriptors makes accept fail on every loop turn: the server says so in
/// its log, once a minute, not once per failure (and not never, as before).
@Suite struct AcceptFailureTests {
    @Test func runningOutOfDescriptorsIsLoggedOnceAMinute() throws {
        let logs = CapturedLogs()
        let channel = EmbeddedChannel(handler: AcceptFailureLogger(logger: Logger(label: "accept") { _ in logs }))
        for _ in 0..<50 {
            channel.pipeline.fireErrorCaught(IOError(errnoCode: EMFILE, reason: "accept"))
        }
        let lines = logs.text.components(separatedBy: "cannot accept connections: out of file descriptors").count - 1
        #expect(lines == 1, "\(logs.text)")
        #expect(logs.text.contains("suppressed_since_last") == false)
        _ = try? channel.finish()
    }
}
