import CNGHTTP2
import NIOCore

/// One header field, name lowercased as HTTP/2 requires. Pseudo-headers (`:path`) included.
public struct HTTPField: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// A complete request (server side) or response (client side): its header block and its body.
public struct HTTP2Message: Sendable {
    public var fields: [HTTPField]
    public var body: ByteBuffer

    public init(fields: [HTTPField], body: ByteBuffer) {
        self.fields = fields
        self.body = body
    }

    /// The first value of a header (or pseudo-header) by lowercase name.
    public subscript(name: String) -> String? {
        fields.first { $0.name == name }?.value
    }
}

/// What incoming bytes meant.
public enum HTTP2Event: Sendable {
    /// A request's headers began to arrive (server side): its time limit starts now.
    case requestBegun(streamID: Int32)
    /// A whole message arrived on a stream (END_STREAM seen).
    case message(streamID: Int32, HTTP2Message)
    /// The stream's body passed `HTTP2Limits.maxBodyBytes`; the rest of it is dropped.
    case bodyTooLarge(streamID: Int32)
    /// The stream closed: normally (`.noError`), reset by either side, or refused.
    case streamClosed(streamID: Int32, errorCode: HTTP2ErrorCode)
    /// The peer will accept no stream above `lastStreamID`.
    case goAway(lastStreamID: Int32, errorCode: HTTP2ErrorCode)
}

/// The limits a session advertises and enforces.
public struct HTTP2Limits: Sendable {
    /// SETTINGS_MAX_CONCURRENT_STREAMS we advertise; nghttp2 refuses streams beyond it.
    public var maxConcurrentStreams: UInt32
    /// SETTINGS_INITIAL_WINDOW_SIZE we advertise (and the connection window we open).
    public var initialWindowSize: UInt32
    /// SETTINGS_MAX_HEADER_LIST_SIZE we advertise; a stream whose headers exceed it is reset.
    public var maxHeaderListSize: UInt32
    /// Largest body we buffer per stream, as received on the wire.
    public var maxBodyBytes: Int
    /// When set, the connection's receive window is this many bytes and grows back only as the
    /// owner releases bodies (`releaseBodyBytes`): what the peer may have us buffer is bounded.
    /// When nil, nghttp2 reopens windows as bytes arrive (fine for a client reading answers).
    public var connectionBodyBudget: Int?

    public init(
        maxConcurrentStreams: UInt32 = 250, initialWindowSize: UInt32 = 1 << 20,
        maxHeaderListSize: UInt32 = 16 << 10, maxBodyBytes: Int = 1 << 20, connectionBodyBudget: Int? = nil
    ) {
        self.maxConcurrentStreams = maxConcurrentStreams
        self.initialWindowSize = initialWindowSize
        self.maxHeaderListSize = maxHeaderListSize
        self.maxBodyBytes = maxBodyBytes
        self.connectionBodyBudget = connectionBodyBudget
    }
}

/// HTTP/2 error codes (RFC 9113 section 7).
public struct HTTP2ErrorCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let noError = HTTP2ErrorCode(rawValue: NGHTTP2_NO_ERROR.rawValue)
    public static let refusedStream = HTTP2ErrorCode(rawValue: NGHTTP2_REFUSED_STREAM.rawValue)
    public static let cancel = HTTP2ErrorCode(rawValue: NGHTTP2_CANCEL.rawValue)

    public var description: String { String(cString: nghttp2_http2_strerror(rawValue)) }
}

/// Why a session refused to go on.
public enum HTTP2SessionError: Error, Sendable, Equatable {
    case outOfMemory
    case library(code: Int32)
    case protocolViolation(String)
    case streamClosed(Int32)
}

/// The client connection preface (RFC 9113 section 3.4): how a cleartext port tells HTTP/2 from HTTP/1.1.
public let http2ClientPreface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
