import Contracts
import Foundation
import NIOCore
import RPCCore
import Testing

@Suite struct ProtoJSONTests {
    struct Sample: RPCMessage {
        var displayName: String
        var count: Int
        var createdAt: Date?
    }

    @Test func acceptsLowerCamelCaseAndProtoFieldNames() throws {
        let camel = try ProtoJSON.decode(Sample.self, from: ByteBuffer(string: #"{"displayName":"a","count":1}"#))
        let snake = try ProtoJSON.decode(Sample.self, from: ByteBuffer(string: #"{"display_name":"b","count":2}"#))
        #expect(camel.displayName == "a")
        #expect(snake.displayName == "b")
    }

    @Test func wrongTypeNamesTheField() {
        #expect(throws: RPCError(.invalidArgument, "field 'count': expected a number")) {
            try ProtoJSON.decode(Sample.self, from: ByteBuffer(string: #"{"displayName":"a","count":"many"}"#))
        }
    }

    @Test func missingRequiredFieldNamesTheField() {
        #expect(throws: RPCError(.invalidArgument, "field 'count' is required")) {
            try ProtoJSON.decode(Sample.self, from: ByteBuffer(string: #"{"displayName":"a"}"#))
        }
    }

    @Test func malformedJSONAndInvalidUTF8AreInvalidArgument() {
        for body in [ByteBuffer(string: "{not json"), ByteBuffer(bytes: [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D])] {
            do {
                _ = try ProtoJSON.decode(Sample.self, from: body)
                Issue.record("decoded garbage")
            } catch {
                #expect(error.code == .invalidArgument)
                #expect(error.message.contains("not valid JSON"))
            }
        }
    }

    @Test func unknownFieldsAreIgnoredAndEmptyBodyIsTheEmptyMessage() throws {
        let request = try ProtoJSON.decode(HealthCheckRequest.self, from: ByteBuffer(string: #"{"service":"x","future":1}"#))
        #expect(request.service == "x")
        let empty = try ProtoJSON.decode(HealthCheckRequest.self, from: ByteBuffer())
        #expect(empty.service == "")
    }

    @Test func timestampsAreRFC3339InUTC() throws {
        let date = Date(timeIntervalSince1970: 1_767_225_600.25)
        let encoded = try ProtoJSON.encode(Sample(displayName: "", count: 0, createdAt: date))
        #expect(String(buffer: encoded).contains(#""createdAt":"2026-01-01T00:00:00.250Z""#))
        let decoded = try ProtoJSON.decode(Sample.self, from: ByteBuffer(string: #"{"displayName":"","count":0,"createdAt":"2026-01-01T00:00:00Z"}"#))
        #expect(decoded.createdAt == Date(timeIntervalSince1970: 1_767_225_600))
    }

    @Test func enumsAreWrittenAsNamesAndDefaultsOmitted() throws {
        #expect(String(buffer: try ProtoJSON.encode(HealthCheckResponse(status: .notServing))) == #"{"status":"NOT_SERVING"}"#)
        #expect(String(buffer: try ProtoJSON.encode(HealthCheckRequest())) == "{}")
    }

    @Test func connectCodesMapToTheSpecStatuses() {
        let expected: [ConnectCode: Int] = [
            .canceled: 499, .unknown: 500, .invalidArgument: 400, .deadlineExceeded: 504, .notFound: 404,
            .alreadyExists: 409, .permissionDenied: 403, .resourceExhausted: 429, .failedPrecondition: 400,
            .aborted: 409, .outOfRange: 400, .unimplemented: 501, .internal: 500, .unavailable: 503,
            .dataLoss: 500, .unauthenticated: 401,
        ]
        for code in ConnectCode.allCases { #expect(code.httpStatus == expected[code]) }
        #expect(ConnectCode.inferred(fromHTTPStatus: 400) == .internal)
        #expect(ConnectCode.inferred(fromHTTPStatus: 404) == .unimplemented)
        #expect(ConnectCode.inferred(fromHTTPStatus: 502) == .unavailable)
        #expect(ConnectCode.inferred(fromHTTPStatus: 418) == .unknown)
    }
}
