import AWSMarketplace
import ConnectTransport
import Logging
import Tracing

/// The HTTP endpoint Amazon SNS POSTs subscription events to. SNS retries any answer but 2xx, so:
/// 200 for a message taken (or a duplicate), 400 for one that is not an SNS message, 403 for one
/// not provably from SNS on our topic, 503 when we could not check or record it (try again).
struct SNSEndpoint {
    static let path = "/marketplace/sns"
    let events: SubscriptionEvents
    /// Anyone can POST here: refusals are counted (`refused_sns_requests_total{reason}`) and
    /// logged once a minute per kind, not a line each.
    let refusals: RateLimitedLog
    let metrics: ServerMetrics

    var route: PlainRoute {
        let events = events
        let refusals = refusals
        let metrics = metrics
        return PlainRoute(method: "POST") { request in
            // A trace of its own (SNS sends no trace context): the receipt, and what it changed.
            let span = InstrumentationSystem.tracer.startSpan("SNS notification", context: ServiceContext.topLevel, ofKind: .consumer)
            defer { span.end() }
            return await TraceContext.run(in: span) { () async -> HTTPResponse in
                do throws(SNSMessageError) {
                    let message = try SNSMessage(body: Array(buffer: request.body), typeHeader: request.header("x-amz-sns-message-type"))
                    span.attributes["messaging.system"] = "aws_sns"
                    span.attributes["messaging.message.id"] = message.messageID
                    span.attributes["sns.message_type"] = request.header("x-amz-sns-message-type")
                    switch try await events.receive(message) {
                    case .accepted:
                        span.attributes["sns.outcome"] = "accepted"
                        return .text(200, "accepted\n")
                    case .duplicate:
                        span.attributes["sns.outcome"] = "duplicate"
                        return .text(200, "duplicate: already taken\n")
                    }
                } catch {
                    span.attributes["sns.outcome"] = "refused: \(error.kindName)"
                    return Self.refuse(error, request: request, metrics: metrics, refusals: refusals)
                }
            }
        }
    }

    /// The message may be anyone's: counted, logged once a minute per kind with why, never its content.
    private static func refuse(_ error: SNSMessageError, request: HTTPRequest, metrics: ServerMetrics, refusals: RateLimitedLog) -> HTTPResponse {
        metrics.countRefusal("sns", reason: error.kindName)
        refusals.warning("SNS message refused: \(error.kindName)", metadata: ["reason": "\(error)", "peer": "\(request.peerAddress ?? "")"])
        return .text(error.httpStatus, "\(error)\n")
    }
}
