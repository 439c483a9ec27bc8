import AWSMarketplace
import ConnectTransport
import Logging

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
            do throws(SNSMessageError) {
                let message = try SNSMessage(body: Array(buffer: request.body), typeHeader: request.header("x-amz-sns-message-type"))
                switch try await events.receive(message) {
                case .accepted: return .text(200, "accepted\n")
                case .duplicate: return .text(200, "duplicate: already taken\n")
                }
            } catch {
                // The message may be anyone's; log why it was refused, never its content.
                metrics.countRefusal("sns", reason: error.kindName)
                refusals.warning("SNS message refused: \(error.kindName)", metadata: ["reason": "\(error)", "peer": "\(request.peerAddress ?? "")"])
                return .text(error.httpStatus, "\(error)\n")
            }
        }
    }
}
