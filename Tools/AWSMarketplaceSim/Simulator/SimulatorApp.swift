import AWSMarketplace
import Foundation
import GRDB
import Hummingbird
import Logging
import NIOCore
import ServiceRuntime
import WebLook

/// aws-marketplace-sim: a local stand-in for the AWS side of the journey. Built from its settings
/// alone, so tests run it in-process or as a process.
public struct SimulatorApp: Sendable {
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        public var dataDirectory: String
        /// Where "Set up your account" POSTs the registration token.
        public var fulfillmentURL: String
        public var seedPath: String?
        /// Where SNS messages are POSTed; nil sends none.
        public var notificationURL: String?
        /// Where offer emails are written as `.eml` files; nil writes none.
        public var maildropDirectory: String?
        /// The simulator's address as buyers' browsers reach it (offer emails' links); nil: where it listens.
        public var publicURL: String?
        /// The simulator's address as the seller's services reach it (SNS certificate and
        /// subscription URLs); nil: where it listens. In a container network the two differ.
        public var serviceURL: String?
        /// How long a metering hour lasts, in seconds: 3600, shorter for tests.
        public var meteringHourSeconds = 3600

        public init(
            host: String, port: Int, dataDirectory: String, fulfillmentURL: String, seedPath: String?,
            notificationURL: String?, maildropDirectory: String?
        ) {
            self.host = host
            self.port = port
            self.dataDirectory = dataDirectory
            self.fulfillmentURL = fulfillmentURL
            self.seedPath = seedPath
            self.notificationURL = notificationURL
            self.maildropDirectory = maildropDirectory
        }
    }

    let settings: Settings
    let store: SimulatorStore
    let sellerAPI: SellerAPI
    let signer: SNSSigner
    let notifier: MarketplaceNotifier
    let logger: Logger

    public init(settings: Settings, logger: Logger) throws {
        self.settings = settings
        self.logger = logger
        let database = try ServiceDatabase.sqlite(directory: settings.dataDirectory, name: "aws-marketplace-sim", migrator: SimulatorStore.migrator)
        store = SimulatorStore(database: try database.pool)
        if let seedPath = settings.seedPath {
            try store.apply(try SimulatorSeed.load(path: seedPath))
        }
        sellerAPI = SellerAPI(store: store, meteringHour: settings.meteringHourSeconds)
        signer = try SNSSigner(directory: settings.dataDirectory)
        notifier = MarketplaceNotifier(
            store: store, signer: signer, notificationURL: settings.notificationURL,
            maildropDirectory: settings.maildropDirectory, publicURL: settings.publicURL, logger: logger)
    }

    /// Serves until the process is asked to stop; logs `listening` with the bound port.
    public func run() async throws {
        let logger = self.logger
        let notifier = self.notifier
        let host = settings.host
        let serviceURL = settings.serviceURL
        let app = Application(
            router: makeRouter(),
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "aws-marketplace-sim"),
            services: [notifier.runner()],
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                notifier.serverIsListening(baseURL: serviceURL ?? "http://\(host):\(port)")
                logger.info("listening", metadata: ["service": "aws-marketplace-sim", "port": "\(port)"])
            },
            logger: logger)
        try await app.runService()
    }

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        let sellerAPI = self.sellerAPI
        let store = self.store
        let fulfillmentURL = settings.fulfillmentURL
        let notifier = self.notifier
        let certificatePEM = signer.certificatePEM

        router.get("healthz") { _, _ in "ok\n" }
        router.get("readyz") { _, _ in "ready\n" }

        // Amazon SNS's side: the signing certificate and the subscription confirmation link.
        router.get("SimpleNotificationService-simulator.pem") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "application/x-pem-file"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: certificatePEM)))
        }
        router.get("sns/confirm") { request, _ -> Response in
            let confirmed = try await store.confirmTopic(token: request.uri.queryParameters.get("Token") ?? "")
            if confirmed { notifier.wake.signal() }
            return confirmed
                ? Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "<ConfirmSubscriptionResponse/>")))
                : Response(status: .notFound, body: .init(byteBuffer: ByteBuffer(string: "<Error><Code>NotFound</Code></Error>")))
        }

        // The seller amends a contract: new dimensions, and entitlement-updated for its subscribers.
        router.post("_sim/offers/:offer/amend") { request, context -> HTTPResponse.Status in
            struct Amendment: Decodable { var dimensions: [String: Int] }
            let amendment = try await request.decode(as: Amendment.self, context: context)
            guard let changed = try await store.amend(offerID: context.parameters.get("offer") ?? "", dimensions: amendment.dimensions) else {
                return .notFound
            }
            for subscription in changed { try await notifier.publish(action: .entitlementUpdated, subscription: subscription) }
            return .noContent
        }

        // The seller APIs: every AWS JSON 1.1 call is a POST to "/".
        router.post("/") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            // swift-http-types carries HTTP/1.1's Host as the request's authority, not as a field.
            if let authority = request.head.authority { headers["host"] = authority }
            let reply = try await sellerAPI.handle(path: request.uri.path, headers: headers, body: Array(buffer: body))
            var responseHeaders = HTTPFields()
            responseHeaders[.contentType] = "application/x-amz-json-1.1"
            // As AWS does: an id per request, which the seller's logs and traces quote to support.
            responseHeaders[.init("X-Amzn-Requestid")!] = UUID().uuidString.lowercased()
            if let type = reply.errorType { responseHeaders[.init("X-Amzn-Errortype")!] = type }
            let data = try JSONSerialization.data(withJSONObject: reply.body)
            return Response(status: .init(code: reply.status), headers: responseHeaders, body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }

        // Test switch: answer the next N seller API calls with ThrottlingException.
        router.post("_sim/throttle") { request, context -> HTTPResponse.Status in
            struct Throttle: Decodable { var count: Int }
            sellerAPI.throttle(next: try await request.decode(as: Throttle.self, context: context).count)
            return .noContent
        }

        // Test switch: hand the next N usage records back in UnprocessedRecords.
        router.post("_sim/unprocessed") { request, context -> HTTPResponse.Status in
            struct Unprocessed: Decodable { var count: Int }
            sellerAPI.throttleUnprocessed(next: try await request.decode(as: Unprocessed.self, context: context).count)
            return .noContent
        }

        // Test switch: keep the records of the next N BatchMeterUsage calls, then answer each after `seconds`.
        router.post("_sim/delay-metering") { request, context -> HTTPResponse.Status in
            struct Delay: Decodable {
                var count: Int
                var seconds: Double
            }
            let delay = try await request.decode(as: Delay.self, context: context)
            sellerAPI.delayMetering(calls: delay.count, by: .milliseconds(Int64(delay.seconds * 1000)))
            return .noContent
        }

        // The usage records accepted, for tests to compare totals.
        router.get("_sim/metering-records") { _, _ -> Response in
            let data = try await store.meteringRecordsJSON()
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }

        // Signed seller API calls received, by target (`{"AWSMPMeteringService.ResolveCustomer": 3}`).
        router.get("_sim/calls") { _, _ -> Response in
            let data = try JSONSerialization.data(withJSONObject: sellerAPI.callCounts, options: [.sortedKeys])
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }

        router.get(RouterPath(WebLook.stylesheetPath)) { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: WebLook.stylesheet)))
        }

        router.get("buyer/offers/:offer") { request, context -> Response in
            // Not signed in: AWS's sign-in, here a choice among the offer account's IAM identities.
            let offerID = context.parameters.get("offer") ?? ""
            let chosen = request.uri.queryParameters.get("as") ?? ""
            if try await store.identity(name: chosen) == nil, let offer = try await store.offer(id: offerID) {
                let names = try await store.identityNames(accountID: offer.buyerAccountID)
                return Self.page(
                    .ok, "sign-in",
                    [
                        "title": "Sign in", "accountID": offer.buyerAccountID,
                        "identities": names.map { ["name": $0, "offerID": offerID] }
                    ])
            }
            let (identity, refusal) = try await Self.signedIn(request, store: store)
            guard let identity else { return refusal! }
            guard let offer = try await store.offer(id: context.parameters.get("offer") ?? ""), offer.buyerAccountID == identity.accountID else {
                return Self.page(
                    .notFound, "problem", ["title": "Offer not found", "message": "No private offer with this id is available to your account."])
            }
            return Self.page(
                .ok, "offer",
                [
                    "title": "Private offer", "productName": offer.productName, "buyerAccountID": offer.buyerAccountID,
                    "identity": identity.name, "committedAmountUSD": offer.committedAmountUSD, "termMonths": offer.termMonths,
                    "expiresAt": offer.expiresAt.formatted(.iso8601), "offerID": offer.id,
                    "dimensions": offer.dimensions.sorted { $0.key < $1.key }.map { ["name": $0.key, "quantity": $0.value] }
                ])
        }

        router.post("buyer/offers/:offer/subscribe") { request, context -> Response in
            var request = request
            let form = try await Self.form(&request)
            let (identity, refusal) = try await Self.signedIn(request, store: store, form: form)
            guard let identity else { return refusal! }
            guard let offer = try await store.offer(id: context.parameters.get("offer") ?? "") else {
                return Self.page(.notFound, "problem", ["title": "Offer not found", "message": "No private offer with this id exists."])
            }
            switch try await store.subscribe(offer: offer, identity: identity) {
            case .subscribed(let subscription):
                try await notifier.publish(action: .subscribeSuccess, subscription: subscription)
                return .redirect(to: "/buyer/subscriptions/\(subscription.customerIdentifier)?as=\(identity.name)", type: .found)
            case .alreadySubscribed(let subscription):
                return .redirect(to: "/buyer/subscriptions/\(subscription.customerIdentifier)?as=\(identity.name)", type: .found)
            case .otherOfferActive:
                return Self.page(
                    .conflict, "problem",
                    [
                        "title": "Already subscribed",
                        "message":
                            "This AWS account already subscribes to a Committed Contract private offer of this product; an account can subscribe to only one."
                    ])
            case .offerExpired:
                return Self.page(
                    .gone, "problem", ["title": "Offer expired", "message": "This private offer has expired. Ask the seller for a new one."])
            case .notYourOffer:
                return Self.page(
                    .notFound, "problem", ["title": "Offer not found", "message": "No private offer with this id is available to your account."])
            }
        }

        router.get("buyer/subscriptions/:customer") { request, context -> Response in
            let (identity, refusal) = try await Self.signedIn(request, store: store)
            guard let identity else { return refusal! }
            guard let subscription = try await store.subscription(customerIdentifier: context.parameters.get("customer") ?? ""),
                subscription.accountID == identity.accountID, let offer = try await store.offer(id: subscription.offerID)
            else {
                return Self.page(.notFound, "problem", ["title": "Subscription not found", "message": "Your account has no such subscription."])
            }
            return Self.page(
                .ok, "subscription",
                [
                    "title": "Subscription", "productName": offer.productName, "customerIdentifier": subscription.customerIdentifier,
                    "accountID": subscription.accountID, "state": subscription.state, "identity": identity.name
                ])
        }

        // "Set up your account": a fresh registration token, carried to the seller by an auto-submitting form.
        router.post("buyer/subscriptions/:customer/setup") { request, context -> Response in
            var request = request
            let form = try await Self.form(&request)
            let (identity, refusal) = try await Self.signedIn(request, store: store, form: form)
            guard let identity else { return refusal! }
            guard let subscription = try await store.subscription(customerIdentifier: context.parameters.get("customer") ?? ""),
                subscription.accountID == identity.accountID, subscription.state != "cancelled"
            else {
                return Self.page(
                    .notFound, "problem", ["title": "Subscription not found", "message": "Your account has no active subscription with this id."])
            }
            let token = try await store.issueRegistrationToken(customerIdentifier: subscription.customerIdentifier)
            return Self.page(.ok, "setup", ["title": "Set up your account", "fulfillmentURL": fulfillmentURL, "token": token])
        }
        // Test switch: the buyer's payment failed after subscribing; the subscription ends with subscribe-fail.
        router.post("_sim/subscriptions/:customer/fail") { _, context -> HTTPResponse.Status in
            guard let failed = try await store.cancel(customerIdentifier: context.parameters.get("customer") ?? "") else {
                return .notFound
            }
            try await notifier.publish(action: .subscribeFail, subscription: failed)
            return .noContent
        }

        // The buyer cancels: unsubscribe-pending, then unsubscribe-success.
        router.post("buyer/subscriptions/:customer/cancel") { request, context -> Response in
            var request = request
            let form = try await Self.form(&request)
            let (identity, refusal) = try await Self.signedIn(request, store: store, form: form)
            guard let identity else { return refusal! }
            let customer = context.parameters.get("customer") ?? ""
            guard let current = try await store.subscription(customerIdentifier: customer), current.accountID == identity.accountID,
                let cancelled = try await store.cancel(customerIdentifier: customer)
            else {
                return Self.page(
                    .notFound, "problem", ["title": "Subscription not found", "message": "Your account has no active subscription with this id."])
            }
            try await notifier.publish(action: .unsubscribePending, subscription: cancelled)
            try await notifier.publish(action: .unsubscribeSuccess, subscription: cancelled)
            return Self.page(.ok, "problem", ["title": "Subscription cancelled", "message": "Your subscription has been cancelled."])
        }
        return router
    }

    // MARK: Helpers

    /// The buyer's IAM identity (`as`, from the query or the form), refused with an access-denied
    /// page when it lacks the permissions the seed document lists.
    static func signedIn(_ request: Request, store: SimulatorStore, form: [String: String] = [:])
        async throws -> (SimulatorStore.BuyerIdentity?, Response?)
    {
        let name = form["as"] ?? request.uri.queryParameters.get("as") ?? ""
        guard let identity = try await store.identity(name: name) else {
            return (
                nil,
                page(
                    .unauthorized, "problem",
                    ["title": "Sign in", "message": "Sign in to AWS as an IAM identity of the buyer account (?as=<identity>)."])
            )
        }
        guard identity.canViewAndAccept else {
            return (nil, page(.forbidden, "problem", ["title": "Access denied", "message": BuyerPermissions.missingPermissionsMessage]))
        }
        return (identity, nil)
    }

    static func form(_ request: inout Request) async throws -> [String: String] {
        URLEncodedForm.parse(String(buffer: try await request.collectBody(upTo: 64 << 10)))
    }

    static func page(_ status: HTTPResponse.Status, _ template: String, _ values: [String: Any]) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: BuyerPages.render(template, values))))
    }
}
