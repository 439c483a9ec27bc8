import NGHTTP2
import NIOCore
import Testing

/// The nghttp2 wrapper on its own: a client session and a server session exchange bytes in memory.
@Suite struct HTTP2SessionTests {
    /// Moves every pending byte between the two sessions until both are quiet; returns the events.
    private func pump(_ client: HTTP2Session, _ server: HTTP2Session) throws -> (client: [HTTP2Event], server: [HTTP2Event]) {
        var clientEvents: [HTTP2Event] = [], serverEvents: [HTTP2Event] = []
        for _ in 0..<1000 {
            var toServer = ByteBuffer(), toClient = ByteBuffer()
            clientEvents += try client.collectOutput(into: &toServer)
            if toServer.readableBytes > 0 { serverEvents += try server.receive(toServer) }
            serverEvents += try server.collectOutput(into: &toClient)
            if toClient.readableBytes > 0 { clientEvents += try client.receive(toClient) }
            if toServer.readableBytes == 0 && toClient.readableBytes == 0 { break }
        }
        return (clientEvents, serverEvents)
    }

    private func request(path: String = "/x.v1.S/M") -> [HTTPField] {
        [
            HTTPField(name: ":method", value: "POST"), HTTPField(name: ":scheme", value: "http"),
            HTTPField(name: ":authority", value: "test"), HTTPField(name: ":path", value: path),
            HTTPField(name: "content-type", value: "application/json")
        ]
    }

    @Test func requestAndResponseLargerThanTheFlowControlWindowArriveWhole() throws {
        let client = try HTTP2Session(role: .client, limits: HTTP2Limits(initialWindowSize: 65_535))
        let server = try HTTP2Session(role: .server, limits: HTTP2Limits(initialWindowSize: 65_535))
        let requestBody = ByteBuffer(repeating: UInt8(ascii: "q"), count: 300_000)
        let streamID = try client.submitRequest(headers: request(), body: requestBody)
        var (_, serverEvents) = try pump(client, server)
        #expect(serverEvents.contains { if case .requestBegun(streamID) = $0 { true } else { false } })
        guard case .message(let receivedID, let message) = serverEvents.first(where: { if case .message = $0 { true } else { false } }) else {
            Issue.record("no request arrived: \(serverEvents)")
            return
        }
        #expect(receivedID == streamID)
        #expect(message[":path"] == "/x.v1.S/M")
        #expect(message.body == requestBody)

        let responseBody = ByteBuffer(repeating: UInt8(ascii: "r"), count: 200_000)
        try server.submitResponse(
            streamID: streamID, status: 200, headers: [HTTPField(name: "content-type", value: "application/json")], body: responseBody)
        let events = try pump(client, server)
        serverEvents = events.server
        let response = events.client.compactMap { event -> HTTP2Message? in
            if case .message(_, let message) = event { return message }
            return nil
        }.first
        #expect(response?[":status"] == "200")
        #expect(response?.body == responseBody)
        #expect(events.client.contains { if case .streamClosed(streamID, .noError) = $0 { true } else { false } })
        #expect(server.openStreamCount == 0)
    }

    @Test func bodyOverTheLimitIsReportedOnceAndNotBuffered() throws {
        let client = try HTTP2Session(role: .client, limits: HTTP2Limits())
        let server = try HTTP2Session(role: .server, limits: HTTP2Limits(maxBodyBytes: 1000))
        _ = try client.submitRequest(headers: request(), body: ByteBuffer(repeating: 1, count: 5000))
        let (_, serverEvents) = try pump(client, server)
        let tooLarge = serverEvents.filter { if case .bodyTooLarge = $0 { true } else { false } }
        let messages = serverEvents.filter { if case .message = $0 { true } else { false } }
        #expect(tooLarge.count == 1)
        #expect(messages.isEmpty)
    }

    @Test func garbageInsteadOfAPrefaceIsAProtocolViolation() throws {
        let server = try HTTP2Session(role: .server, limits: HTTP2Limits())
        #expect(throws: HTTP2SessionError.self) {
            _ = try server.receive(ByteBuffer(string: "GARBAGE GARBAGE GARBAGE GARBAGE\r\n"))
        }
    }

    @Test func goAwayStopsNewStreamsAndTellsTheClient() throws {
        let client = try HTTP2Session(role: .client, limits: HTTP2Limits())
        let server = try HTTP2Session(role: .server, limits: HTTP2Limits())
        let first = try client.submitRequest(headers: request(), body: ByteBuffer())
        _ = try pump(client, server)
        server.submitGoAway()
        let events = try pump(client, server)
        #expect(events.client.contains { if case .goAway(first, .noError) = $0 { true } else { false } })
        // A request submitted after the GOAWAY never leaves: it is reported refused, not lost.
        let second = try client.submitRequest(headers: request(), body: ByteBuffer())
        let after = try pump(client, server)
        #expect(after.client.contains { if case .streamClosed(second, .refusedStream) = $0 { true } else { false } })
        #expect(!after.server.contains { if case .message = $0 { true } else { false } })
    }

    @Test func clientResetClosesTheServerStream() throws {
        let client = try HTTP2Session(role: .client, limits: HTTP2Limits())
        let server = try HTTP2Session(role: .server, limits: HTTP2Limits())
        let streamID = try client.submitRequest(headers: request(), body: ByteBuffer(string: "{}"))
        _ = try pump(client, server)
        client.resetStream(streamID, errorCode: .cancel)
        let events = try pump(client, server)
        #expect(events.server.contains { if case .streamClosed(streamID, .cancel) = $0 { true } else { false } })
    }

    @Test func oversizeHeaderListResetsOnlyThatStream() throws {
        let client = try HTTP2Session(role: .client, limits: HTTP2Limits())
        let server = try HTTP2Session(role: .server, limits: HTTP2Limits(maxHeaderListSize: 4096))
        _ = try pump(client, server)  // exchange SETTINGS first
        let big = request() + [HTTPField(name: "x-big", value: String(repeating: "a", count: 8000))]
        let bad = try client.submitRequest(headers: big, body: ByteBuffer())
        let good = try client.submitRequest(headers: request(), body: ByteBuffer())
        let events = try pump(client, server)
        let delivered = events.server.compactMap { event -> Int32? in
            if case .message(let id, _) = event { return id }
            return nil
        }
        #expect(delivered == [good])
        #expect(!delivered.contains(bad))
    }
}
