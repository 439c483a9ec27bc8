import CNGHTTP2
import NIOCore

/// One HTTP/2 connection's protocol state, driven by libnghttp2's "mem" API: bytes in, events out,
/// bytes to send out. The socket belongs to the caller (a SwiftNIO channel handler).
///
/// Every unsafe pointer of the engine stays in this file. The type is not thread-safe: it is owned
/// by one event loop and used only there.
public final class HTTP2Session {
    /// Which side of the connection this session plays.
    public enum Role: Sendable {
        case server
        case client
    }

    private var session: OpaquePointer?
    private let role: Role
    private let limits: HTTP2Limits
    private var streams: [Int32: StreamState] = [:]
    private var pendingEvents: [HTTP2Event] = []

    /// Creates a session and queues our SETTINGS frame (and, for a client, the connection preface).
    public init(role: Role, limits: HTTP2Limits) throws {
        self.role = role
        self.limits = limits

        var callbacks: OpaquePointer?
        guard nghttp2_session_callbacks_new(&callbacks) == 0, let callbacks else {
            throw HTTP2SessionError.outOfMemory
        }
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, onBeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(callbacks, onHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, onFrameReceived)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, onDataChunk)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, onStreamClose)
        nghttp2_session_callbacks_set_on_frame_not_send_callback(callbacks, onFrameNotSent)

        var option: OpaquePointer?
        guard nghttp2_option_new(&option) == 0, let option else { throw HTTP2SessionError.outOfMemory }
        defer { nghttp2_option_del(option) }
        // Until the peer's SETTINGS arrive, assume it accepts this many streams (RFC 9113 suggests 100).
        nghttp2_option_set_peer_max_concurrent_streams(option, 100)
        if limits.connectionBodyBudget != nil {
            // Windows reopen only when the owner releases what it holds (nghttp2 still counts
            // DATA it discards itself, for closed streams and padding, as consumed at once).
            nghttp2_option_set_no_auto_window_update(option, 1)
        }

        let userData = Unmanaged.passUnretained(self).toOpaque()
        let rc: Int32
        switch role {
        case .server: rc = nghttp2_session_server_new2(&session, callbacks, userData, option)
        case .client: rc = nghttp2_session_client_new2(&session, callbacks, userData, option)
        }
        guard rc == 0, session != nil else { throw HTTP2SessionError.library(code: rc) }

        // With a budget, a stream's window is its body limit plus one frame, so a body over the
        // limit still arrives far enough to be refused, and no stream window ever needs reopening.
        let streamWindow =
            limits.connectionBodyBudget == nil
            ? limits.initialWindowSize : UInt32(clamping: limits.maxBodyBytes + 16_384)
        var settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: limits.maxConcurrentStreams),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: streamWindow),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: limits.maxHeaderListSize)
        ]
        let settingsRC = nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
        guard settingsRC == 0 else { throw HTTP2SessionError.library(code: settingsRC) }
        // Widen the connection-level receive window too, so many concurrent bodies do not stall
        // on it; with a budget, the owner sets it (`setConnectionWindow`).
        let extra = Int32(clamping: Int(limits.initialWindowSize) - 65_535)
        if extra > 0, limits.connectionBodyBudget == nil {
            nghttp2_submit_window_update(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, extra)
        }
    }

    // MARK: Body memory (sessions with a connection budget)

    /// Body bytes of streams that have closed, not yet handed back to the peer as window.
    private var releasableBodyBytes = 0
    /// Bytes of bodies over the limit, dropped as they arrived, by stream: their window (the
    /// stream's too) reopens so the peer can finish sending what we will not keep, as it would
    /// without flow control, and read our refusal.
    private var droppedBodyBytes: [Int32: Int] = [:]

    /// Body bytes held in memory by streams still open.
    public private(set) var heldBodyBytes = 0

    /// Reopens the window of every byte released so far (nghttp2 sends WINDOW_UPDATE once enough
    /// has accumulated).
    public func releaseBodyBytes() {
        if releasableBodyBytes > 0 {
            nghttp2_session_consume_connection(session, releasableBodyBytes)
            releasableBodyBytes = 0
        }
        for (streamID, count) in droppedBodyBytes {
            if streams[streamID] != nil {
                nghttp2_session_consume(session, streamID, count)
            } else {
                nghttp2_session_consume_connection(session, count)
            }
        }
        droppedBodyBytes.removeAll(keepingCapacity: true)
    }

    /// Sets the connection's receive window to `size` bytes (sends WINDOW_UPDATE if it grows).
    public func setConnectionWindow(_ size: Int) {
        nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(clamping: size))
    }

    /// Open streams whose request began before `deadline` and has not arrived whole.
    public func requestsBegun(before deadline: NIODeadline) -> [Int32] {
        streams.compactMap { id, stream in
            stream.begunAt.map { $0 < deadline && !stream.complete } == true ? id : nil
        }
    }

    deinit {
        nghttp2_session_del(session)
    }

    // MARK: Input

    /// Feeds bytes read from the socket and returns what they meant, in order.
    /// Throws when the peer broke the protocol; the caller then sends pending output (a GOAWAY) and closes.
    public func receive(_ buffer: ByteBuffer) throws -> [HTTP2Event] {
        let consumed = buffer.withUnsafeReadableBytes { bytes -> Int in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return 0 }
            return nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
        if consumed < 0 { throw HTTP2SessionError.protocolViolation(Self.describe(Int32(consumed))) }
        return takeEvents()
    }

    private func takeEvents() -> [HTTP2Event] {
        guard !pendingEvents.isEmpty else { return [] }
        let events = pendingEvents
        pendingEvents.removeAll(keepingCapacity: true)
        return events
    }

    // MARK: Output

    /// Appends what nghttp2 has ready to send to `buffer`, up to about `limit` bytes (the rest
    /// stays queued in nghttp2, paced by its own flow control), and returns the events that
    /// sending raised (a stream closes once its last frame has left).
    public func collectOutput(into buffer: inout ByteBuffer, limit: Int = .max) throws -> [HTTP2Event] {
        while buffer.readableBytes < limit {
            var chunk: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(session, &chunk)
            if count < 0 { throw HTTP2SessionError.library(code: Int32(count)) }
            guard count > 0, let chunk else { break }
            buffer.writeBytes(UnsafeRawBufferPointer(start: chunk, count: count))
        }
        return takeEvents()
    }

    /// True while the session wants to read or write: false once both sides have said GOAWAY and
    /// every stream is done, which means the connection can close.
    public var isAlive: Bool {
        nghttp2_session_want_read(session) != 0 || nghttp2_session_want_write(session) != 0
    }

    /// Streams that have begun and not yet closed.
    public var openStreamCount: Int { streams.count }

    // MARK: Server side

    /// Answers a request stream: headers, then `body` (nghttp2 paces it by flow control).
    public func submitResponse(streamID: Int32, status: Int, headers: [HTTPField], body: ByteBuffer) throws {
        guard let stream = streams[streamID] else { throw HTTP2SessionError.streamClosed(streamID) }
        var fields = [HTTPField(name: ":status", value: String(status))]
        fields.append(contentsOf: headers)
        stream.outgoing = body
        let rc = withNameValuePairs(fields) { nva, count in
            if body.readableBytes == 0 {
                return nghttp2_submit_response(session, streamID, nva, count, nil)
            }
            var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: readOutgoingBody)
            return nghttp2_submit_response(session, streamID, nva, count, &provider)
        }
        guard rc == 0 else { throw HTTP2SessionError.library(code: rc) }
    }

    /// Tells the client no new streams will be accepted past the last one seen; open streams finish.
    public func submitGoAway(errorCode: HTTP2ErrorCode = .noError) {
        let last = nghttp2_session_get_last_proc_stream_id(session)
        nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, errorCode.rawValue, nil, 0)
    }

    // MARK: Client side

    /// Starts a request stream and returns its id. When the peer's stream limit is reached, nghttp2
    /// holds the HEADERS frame back until a stream closes: the caller need not count.
    public func submitRequest(headers: [HTTPField], body: ByteBuffer) throws -> Int32 {
        let state = StreamState()
        state.outgoing = body
        let id = withNameValuePairs(headers) { nva, count -> Int32 in
            if body.readableBytes == 0 {
                return nghttp2_submit_request(session, nil, nva, count, nil, nil)
            }
            var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: readOutgoingBody)
            return nghttp2_submit_request(session, nil, nva, count, &provider, nil)
        }
        guard id > 0 else { throw HTTP2SessionError.library(code: id) }
        streams[id] = state
        return id
    }

    /// Abandons a stream (the caller cancelled, or its deadline passed).
    public func resetStream(_ streamID: Int32, errorCode: HTTP2ErrorCode) {
        guard streams[streamID] != nil else { return }
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode.rawValue)
    }

    // MARK: Callback plumbing

    fileprivate static func from(_ userData: UnsafeMutableRawPointer?) -> HTTP2Session {
        Unmanaged<HTTP2Session>.fromOpaque(userData!).takeUnretainedValue()
    }

    fileprivate func beginHeaders(streamID: Int32, category: nghttp2_headers_category) {
        if role == .server, category == NGHTTP2_HCAT_REQUEST {
            let stream = StreamState()
            stream.begunAt = .now()
            streams[streamID] = stream
            pendingEvents.append(.requestBegun(streamID: streamID))
        } else if category == NGHTTP2_HCAT_HEADERS {
            streams[streamID]?.inTrailers = true
        }
    }

    fileprivate func header(streamID: Int32, name: String, value: String) -> Bool {
        guard let stream = streams[streamID] else { return true }
        stream.headerBytes += name.utf8.count + value.utf8.count + 32
        if stream.headerBytes > Int(limits.maxHeaderListSize) { return false }
        // Trailers: unary Connect carries none we use.
        if stream.inTrailers { return true }
        stream.fields.append(HTTPField(name: name, value: value))
        return true
    }

    fileprivate func frameReceived(_ frame: UnsafePointer<nghttp2_frame>) {
        let header = frame.pointee.hd
        let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        switch UInt32(header.type) {
        case NGHTTP2_HEADERS.rawValue:
            if endStream, let stream = streams[header.stream_id] {
                finish(streamID: header.stream_id, stream: stream)
            }
        case NGHTTP2_DATA.rawValue:
            if endStream, let stream = streams[header.stream_id] {
                finish(streamID: header.stream_id, stream: stream)
            }
        case NGHTTP2_GOAWAY.rawValue:
            let goaway = frame.pointee.goaway
            pendingEvents.append(.goAway(lastStreamID: goaway.last_stream_id, errorCode: HTTP2ErrorCode(rawValue: goaway.error_code)))
        default:
            break
        }
    }

    private func finish(streamID: Int32, stream: StreamState) {
        stream.complete = true
        guard !stream.exceededBodyLimit else { return }
        pendingEvents.append(.message(streamID: streamID, HTTP2Message(fields: stream.fields, body: stream.incoming)))
        stream.incoming = ByteBuffer()
    }

    fileprivate func dataChunk(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        guard let stream = streams[streamID], !stream.exceededBodyLimit else {
            droppedBodyBytes[streamID, default: 0] += bytes.count
            return
        }
        if stream.incoming.readableBytes + bytes.count > limits.maxBodyBytes {
            stream.exceededBodyLimit = true
            droppedBodyBytes[streamID, default: 0] += stream.heldBytes + bytes.count
            heldBodyBytes -= stream.heldBytes
            stream.heldBytes = 0
            stream.incoming = ByteBuffer()
            pendingEvents.append(.bodyTooLarge(streamID: streamID))
            return
        }
        stream.incoming.writeBytes(bytes)
        stream.heldBytes += bytes.count
        heldBodyBytes += bytes.count
    }

    fileprivate func streamClosed(streamID: Int32, errorCode: UInt32) {
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        releasableBodyBytes += stream.heldBytes
        heldBodyBytes -= stream.heldBytes
        pendingEvents.append(.streamClosed(streamID: streamID, errorCode: HTTP2ErrorCode(rawValue: errorCode)))
    }

    /// A request's HEADERS never left (the peer said GOAWAY first): the server never saw the call.
    fileprivate func frameNotSent(_ frame: UnsafePointer<nghttp2_frame>) {
        guard UInt32(frame.pointee.hd.type) == NGHTTP2_HEADERS.rawValue else { return }
        let streamID = frame.pointee.hd.stream_id
        guard streams.removeValue(forKey: streamID) != nil else { return }
        pendingEvents.append(.streamClosed(streamID: streamID, errorCode: .refusedStream))
    }

    fileprivate func readBody(streamID: Int32, into target: UnsafeMutableRawBufferPointer) -> (count: Int, done: Bool) {
        guard let stream = streams[streamID] else { return (0, true) }
        let count = min(target.count, stream.outgoing.readableBytes)
        stream.outgoing.withUnsafeReadableBytes { source in
            target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source.prefix(count)))
        }
        stream.outgoing.moveReaderIndex(forwardBy: count)
        return (count, stream.outgoing.readableBytes == 0)
    }

    private func withNameValuePairs<R>(_ fields: [HTTPField], _ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        // One contiguous byte buffer for every name and value; nghttp2 copies them during the call.
        var storage = [UInt8]()
        storage.reserveCapacity(fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count })
        var offsets: [(name: Int, nameLength: Int, value: Int, valueLength: Int)] = []
        offsets.reserveCapacity(fields.count)
        for field in fields {
            let name = storage.count
            storage.append(contentsOf: field.name.utf8)
            let value = storage.count
            storage.append(contentsOf: field.value.utf8)
            offsets.append((name, field.name.utf8.count, value, field.value.utf8.count))
        }
        if storage.isEmpty { storage.append(0) }
        return storage.withUnsafeMutableBufferPointer { bytes in
            let base = bytes.baseAddress!
            let pairs = offsets.map { entry in
                nghttp2_nv(
                    name: base + entry.name, value: base + entry.value,
                    namelen: entry.nameLength, valuelen: entry.valueLength,
                    flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            return pairs.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }

    static func describe(_ code: Int32) -> String {
        String(cString: nghttp2_strerror(code))
    }
}

/// What the engine keeps per open stream.
private final class StreamState {
    var fields: [HTTPField] = []
    var headerBytes = 0
    var inTrailers = false
    var incoming = ByteBuffer()
    /// Body bytes received and not yet released (they count against the connection window).
    var heldBytes = 0
    var exceededBodyLimit = false
    /// When a server stream's request began, and whether it has arrived whole.
    var begunAt: NIODeadline?
    var complete = false
    var outgoing = ByteBuffer()
}

// MARK: C callbacks (no captures: they find the session through user_data)

private let onBeginHeaders: nghttp2_on_begin_headers_callback = { _, frame, userData in
    guard let frame else { return 0 }
    let session = HTTP2Session.from(userData)
    if UInt32(frame.pointee.hd.type) == NGHTTP2_HEADERS.rawValue {
        session.beginHeaders(streamID: frame.pointee.hd.stream_id, category: frame.pointee.headers.cat)
    }
    return 0
}

private let onHeader: nghttp2_on_header_callback = { _, frame, name, nameLength, value, valueLength, _, userData in
    guard let frame, let name, let value else { return 0 }
    let session = HTTP2Session.from(userData)
    let nameString = String(decoding: UnsafeBufferPointer(start: name, count: nameLength), as: UTF8.self)
    let valueString = String(decoding: UnsafeBufferPointer(start: value, count: valueLength), as: UTF8.self)
    if session.header(streamID: frame.pointee.hd.stream_id, name: nameString, value: valueString) {
        return 0
    }
    // Over the header list limit: nghttp2 resets this stream only.
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue
}

private let onFrameReceived: nghttp2_on_frame_recv_callback = { _, frame, userData in
    guard let frame else { return 0 }
    HTTP2Session.from(userData).frameReceived(frame)
    return 0
}

private let onDataChunk: nghttp2_on_data_chunk_recv_callback = { _, _, streamID, data, length, userData in
    guard let data else { return 0 }
    HTTP2Session.from(userData).dataChunk(streamID: streamID, bytes: UnsafeRawBufferPointer(start: data, count: length))
    return 0
}

private let onStreamClose: nghttp2_on_stream_close_callback = { _, streamID, errorCode, userData in
    HTTP2Session.from(userData).streamClosed(streamID: streamID, errorCode: errorCode)
    return 0
}

private let onFrameNotSent: nghttp2_on_frame_not_send_callback = { _, frame, _, userData in
    guard let frame else { return 0 }
    HTTP2Session.from(userData).frameNotSent(frame)
    return 0
}

private let readOutgoingBody: nghttp2_data_source_read_callback = { _, streamID, buffer, length, dataFlags, _, userData in
    guard let buffer, let dataFlags else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
    let session = HTTP2Session.from(userData)
    let (count, done) = session.readBody(streamID: streamID, into: UnsafeMutableRawBufferPointer(start: buffer, count: length))
    if done { dataFlags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue }
    return count
}
