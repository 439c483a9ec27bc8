import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Tracing

/// Calls one AWS service that speaks the JSON 1.1 protocol: `POST /`, `X-Amz-Target`,
/// `application/x-amz-json-1.1`, SigV4. Retries throttling, AWS failures and lost connections
/// with exponential backoff and full jitter. Request bodies are never logged: they carry tokens.
public struct AWSJSONClient: Sendable {
    public struct Configuration: Sendable {
        /// `https://metering.marketplace.us-east-1.amazonaws.com/`, or a local simulator.
        public var endpoint: URL
        public var region: String
        public var credentials: AWSCredentials
        /// SigV4 signing name.
        public var signingName: String
        /// Limit for one attempt, answer included.
        public var timeout: Duration
        public var maxAttempts: Int
        /// Backoff before attempt n+1 is random in 0...min(maxDelay, baseDelay * 2^n).
        public var baseDelay: Duration
        public var maxDelay: Duration

        public init(
            endpoint: URL, region: String, credentials: AWSCredentials, signingName: String = "aws-marketplace",
            timeout: Duration = .seconds(10), maxAttempts: Int = 5,
            baseDelay: Duration = .milliseconds(100), maxDelay: Duration = .seconds(5)
        ) {
            self.endpoint = endpoint
            self.region = region
            self.credentials = credentials
            self.signingName = signingName
            self.timeout = timeout
            self.maxAttempts = maxAttempts
            self.baseDelay = baseDelay
            self.maxDelay = maxDelay
        }
    }

    public let configuration: Configuration
    private let http: HTTPClient
    private let logger: Logger

    public init(configuration: Configuration, http: HTTPClient = .shared, logger: Logger = Logger(label: "aws-json")) {
        self.configuration = configuration
        self.http = http
        self.logger = logger
    }

    /// Calls `target` (`AWSMPMeteringService.ResolveCustomer`) with `input`, decoding the answer.
    /// An `interactive` call (a person waits on a page) makes at most 3 attempts and starts no
    /// retry after a second: the person gets an answer soon, and a flood of such calls cannot
    /// multiply into the seller's AWS quota.
    public func call<Input: Encodable, Output: Decodable>(
        target: String, input: Input, output: Output.Type = Output.self,
        interactive: Bool = false
    )
        async throws(AWSMarketplaceError) -> Output
    {
        let started = ContinuousClock.now
        let body: [UInt8]
        do {
            body = Array(try Self.encoder.encode(input))
        } catch {
            throw AWSMarketplaceError(kind: .invalidParameter, message: "cannot encode the request: \(error)")
        }
        // One span for the call, retries included (each one an event on it); never the body, which carries tokens.
        let span = InstrumentationSystem.tracer.startSpan(target, context: ServiceContext.current ?? .topLevel, ofKind: .client)
        defer { span.end() }
        let parts = target.split(separator: ".")
        span.attributes["rpc.system"] = "aws-api"
        span.attributes["rpc.service"] = parts.first.map(String.init)
        span.attributes["rpc.method"] = parts.last.map(String.init)
        span.attributes["server.address"] = configuration.endpoint.host
        var attempt = 0
        while true {
            attempt += 1
            span.attributes["aws.attempts"] = attempt
            do throws(AWSMarketplaceError) {
                let (status, responseBody) = try await send(target: target, body: body)
                logger.debug("aws call", metadata: ["target": "\(target)", "status": "\(status)", "attempt": "\(attempt)"])
                span.attributes["http.response.status_code"] = status.code
                span.attributes["aws.request_id"] = status.headers.first(name: "x-amzn-requestid")
                do throws(AWSMarketplaceError) {
                    return try Self.decode(Output.self, status: status.code, headers: status.headers, body: responseBody)
                } catch {
                    span.attributes["aws.error_type"] = "\(error.kind)"
                    throw error
                }
            } catch let error
                where error.isRetryable && attempt < (interactive ? min(3, configuration.maxAttempts) : configuration.maxAttempts)
                && (!interactive || ContinuousClock.now - started < .seconds(1))
            {
                logger.info(
                    "aws call failed, retrying",
                    metadata: [
                        "target": "\(target)", "attempt": "\(attempt)", "error": "\(error.kind)"
                    ])
                span.addEvent(SpanEvent(name: "retry", attributes: ["aws.error_type": .string("\(error.kind)")]))
                try? await Task.sleep(for: backoff(afterAttempt: attempt))
                if Task.isCancelled { throw AWSMarketplaceError(kind: .unreachable, message: "the call was canceled") }
            } catch {
                if error.isRetryable { span.setStatus(SpanStatus(code: .error)) }
                span.attributes["aws.error_type"] = "\(error.kind)"
                throw error
            }
        }
    }

    private func backoff(afterAttempt attempt: Int) -> Duration {
        let ceiling = min(configuration.maxDelay, configuration.baseDelay * (1 << min(attempt - 1, 20)))
        return .nanoseconds(Int64.random(in: 0...max(0, TimeAmount(ceiling).nanoseconds)))
    }

    private func send(target: String, body: [UInt8]) async throws(AWSMarketplaceError) -> ((code: Int, headers: HTTPHeaders), ByteBuffer) {
        let signer = SigV4Signer(credentials: configuration.credentials, service: configuration.signingName, region: configuration.region)
        let headers: [(name: String, value: String)] = [
            ("host", SigV4Signer.host(of: configuration.endpoint)),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target)
        ]
        let signature = signer.sign(.init(method: "POST", url: configuration.endpoint, headers: headers, body: body), at: Date())
        var request = HTTPClientRequest(url: configuration.endpoint.absoluteString)
        request.method = .POST
        for (name, value) in headers + signature.headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await http.execute(request, timeout: TimeAmount(configuration.timeout))
            let responseBody = try await response.body.collect(upTo: 8 << 20)
            return ((Int(response.status.code), response.headers), responseBody)
        } catch {
            throw AWSMarketplaceError(kind: .unreachable, message: "no answer from \(configuration.endpoint.host ?? "AWS"): \(error)")
        }
    }

    static func decode<Output: Decodable>(_ type: Output.Type, status: Int, headers: HTTPHeaders, body: ByteBuffer)
        throws(AWSMarketplaceError) -> Output
    {
        let data = Data(buffer: body)
        guard status == 200 else {
            let wire = try? JSONDecoder().decode(WireError.self, from: data)
            let type = AWSMarketplaceError.errorType(header: headers.first(name: "x-amzn-errortype"), bodyType: wire?.type)
            throw AWSMarketplaceError(
                kind: type.map(AWSMarketplaceError.Kind.init(awsType:)) ?? (status >= 500 ? .internalServiceError : .other("HTTP \(status)")),
                message: wire?.message ?? wire?.capitalMessage ?? "HTTP status \(status)", status: status)
        }
        do {
            return try decoder.decode(Output.self, from: data.isEmpty ? Data("{}".utf8) : data)
        } catch {
            throw AWSMarketplaceError(kind: .other("MalformedResponse"), message: "the answer does not decode: \(error)", status: status)
        }
    }

    /// `{"__type": "...#Name", "message": "..."}` (some services say `Message`).
    private struct WireError: Decodable {
        var type: String?
        var message: String?
        var capitalMessage: String?

        enum CodingKeys: String, CodingKey {
            case type = "__type"
            case message
            case capitalMessage = "Message"
        }
    }

    /// JSON 1.1 writes timestamps as epoch seconds.
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        return encoder
    }()

    private static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return decoder
    }()
}
