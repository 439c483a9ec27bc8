import Contracts
import Foundation
import NIOCore
import Testing

@testable import RPCCore

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
            .dataLoss: 500, .unauthenticated: 401
        ]
        for code in ConnectCode.allCases { #expect(code.httpStatus == expected[code]) }
        #expect(ConnectCode.inferred(fromHTTPStatus: 400) == .internal)
        #expect(ConnectCode.inferred(fromHTTPStatus: 404) == .unimplemented)
        #expect(ConnectCode.inferred(fromHTTPStatus: 502) == .unavailable)
        #expect(ConnectCode.inferred(fromHTTPStatus: 418) == .unknown)
    }
}

@Suite struct EmptyMessageTests {
    struct WithRequiredField: RPCMessage {
        var name: String
    }

    @Test func emptyBodiesAndEmptyObjectsDecodeAsDefaults() throws {
        for body in ["", "{}", " { } ", "\n{\t}\n"] {
            #expect(try ProtoJSON.decode(HealthCheckRequest.self, from: ByteBuffer(string: body)).service == "")
        }
        // The shortcut must not swallow real content.
        #expect(try ProtoJSON.decode(HealthCheckRequest.self, from: ByteBuffer(string: #"{"service":"s"}"#)).service == "s")
    }

    @Test func emptyObjectStillReportsMissingRequiredFields() {
        #expect(throws: RPCError(.invalidArgument, "field 'name' is required")) {
            try ProtoJSON.decode(WithRequiredField.self, from: ByteBuffer(string: "{}"))
        }
    }
}

/// The streaming encoder must say what Foundation's JSONEncoder says.
@Suite struct StreamingEncoderTests {
    struct Inner: RPCMessage, Equatable {
        var name: String
        var tags: [String]
    }

    struct Everything: RPCMessage, Equatable {
        enum Kind: String, Codable, Sendable { case alpha = "ALPHA", beta = "BETA" }
        var text: String
        var escaped: String
        var flag: Bool
        var small: Int32
        var big: Int64
        var ratio: Double
        var kind: Kind
        var when: Date
        var blob: Data
        var inner: Inner
        var list: [Inner]
        var map: [String: Int]
        var missing: String?
        var present: String?
    }

    private let sample = Everything(
        text: "plain", escaped: "quote \" backslash \\ newline \n tab \t bell \u{07} slash / é 🙂",
        flag: true, small: -7, big: 9_007_199_254_740_993, ratio: 0.1, kind: .beta,
        when: Date(timeIntervalSince1970: 1_767_225_600.5), blob: Data([0, 1, 2, 250]),
        inner: Inner(name: "i", tags: ["a", "b"]), list: [Inner(name: "x", tags: []), Inner(name: "y", tags: ["z"])],
        map: ["one": 1], missing: nil, present: "here")

    @Test func roundTripsEveryFieldKind() throws {
        let encoded = try ProtoJSON.encode(sample)
        #expect(try ProtoJSON.decode(Everything.self, from: encoded) == sample)
        let text = String(buffer: encoded)
        #expect(!text.contains("null"))
        #expect(!text.contains("missing"))
        #expect(text.contains(#""kind":"BETA""#))
        #expect(text.contains(#""when":"2026-01-01T00:00:00.500Z""#))
        #expect(text.contains(#""big":9007199254740993"#))
    }

    @Test func agreesWithFoundation() throws {
        let foundation = JSONEncoder()
        foundation.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        foundation.dateEncodingStrategy = .iso8601
        let ours = try JSONSerialization.jsonObject(with: Data(buffer: try ProtoJSON.encode(sample))) as? NSDictionary
        let theirs = try JSONSerialization.jsonObject(with: try foundation.encode(sample)) as? NSDictionary
        // Dates differ only in fractional digits; compare everything else.
        let strip = { (dictionary: NSDictionary?) -> NSDictionary? in
            let copy = dictionary?.mutableCopy() as? NSMutableDictionary
            copy?.removeObject(forKey: "when")
            return copy
        }
        #expect(strip(ours) == strip(theirs))
    }

    @Test func nonFiniteNumbersAreRefused() {
        struct Bad: Encodable { var value: Double }
        #expect(throws: (any Error).self) { try ProtoJSON.encode(Bad(value: .nan)) }
    }

    @Test func nestedContainersFallBackToFoundation() throws {
        struct Nested: Encodable {
            func encode(to encoder: any Encoder) throws {
                var outer = encoder.container(keyedBy: AnyKey.self)
                var inner = outer.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey("outer"))
                try inner.encode(1, forKey: AnyKey("inner"))
            }
        }
        struct AnyKey: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(_ string: String) { stringValue = string }
            init?(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }
        #expect(String(buffer: try ProtoJSON.encode(Nested())) == #"{"outer":{"inner":1}}"#)
    }
}

/// The fast path for flat string-only requests gives exactly Foundation's answer, and leaves
/// everything else (and every error) to Foundation.
@Suite struct FlatMessageDecoderTests {
    struct Flat: RPCMessage, Equatable {
        var organizationId: String
        var note: String?
    }

    /// Foundation's answer, for comparison: the shared decoder with ProtoJSON's settings.
    private func foundation(_ body: String) throws -> Flat {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(Flat.self, from: Data(body.utf8))
    }

    @Test func simpleBodiesTakeTheFastPathWithFoundationsAnswer() throws {
        for body in [
            #"{"organizationId":"org-1"}"#, #" { "organizationId" : "o", "note" : "a b" } "#,
            #"{"note":"","organizationId":"x","unknownField":"ignored"}"#
        ] {
            let fast = try #require(FlatMessageDecoder.decode(Flat.self, from: ByteBuffer(string: body)), "\(body)")
            #expect(fast == (try foundation(body)))
            #expect(try ProtoJSON.decode(Flat.self, from: ByteBuffer(string: body)) == fast)
        }
    }

    @Test func anythingElseFallsBackToFoundation() throws {
        for body in [
            #"{"organization_id":"snake"}"#, #"{"organizationId":"esc\"aped"}"#, #"{"organizationId":"caf\#u{E9}"}"#,
            #"{"organizationId":"a","organizationId":"b"}"#, #"{"organizationId":1}"#, #"{"note":"only"}"#,
            #"{"organizationId":"a"} x"#, #"{"organizationId":"a",}"#, #"{"organizationId":null}"#
        ] {
            #expect(FlatMessageDecoder.decode(Flat.self, from: ByteBuffer(string: body)) == nil, "\(body)")
        }
        // ...and Foundation's answers stand: snake_case accepted, errors unchanged.
        #expect(try ProtoJSON.decode(Flat.self, from: ByteBuffer(string: #"{"organization_id":"snake"}"#)).organizationId == "snake")
        #expect(throws: RPCError(.invalidArgument, "field 'organizationId' is required")) {
            try ProtoJSON.decode(Flat.self, from: ByteBuffer(string: #"{"note":"only"}"#))
        }
        #expect(throws: RPCError(.invalidArgument, "field 'organizationId': expected a string")) {
            try ProtoJSON.decode(Flat.self, from: ByteBuffer(string: #"{"organizationId":1}"#))
        }
    }
}
