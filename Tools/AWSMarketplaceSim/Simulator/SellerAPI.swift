import AWSMarketplace
import Crypto
import Foundation
import Synchronization

/// The seller APIs at AWS's wire format (JSON 1.1): ResolveCustomer, BatchMeterUsage and
/// GetEntitlements. Every request must carry a valid SigV4 signature from a seller key.
final class SellerAPI: Sendable {
    let store: SimulatorStore
    /// How long a metering "hour" lasts: 3600 s, shorter for tests (`--metering-hour-seconds`).
    /// AWS's 6-hour window and the hour after a cancellation scale with it.
    let meteringHour: Int
    /// Calls still to answer with ThrottlingException (a switch for tests).
    private let throttleBudget = Atomic<Int>(0)
    /// Usage records still to hand back in UnprocessedRecords rather than record (a switch for tests).
    let unprocessedBudget = Atomic<Int>(0)
    /// BatchMeterUsage calls still to answer late, and how late: the records are kept first, so a
    /// caller that dies waiting has been billed (a switch for tests).
    let meteringDelay = Mutex<(calls: Int, delay: Duration)>((0, .zero))
    /// Signed calls received, by `X-Amz-Target` (throttled ones included): what they cost the seller.
    private let calls = Mutex<[String: Int]>([:])

    /// Signed calls received so far, by target.
    var callCounts: [String: Int] { calls.withLock { $0 } }

    init(store: SimulatorStore, meteringHour: Int = 3600) {
        self.store = store
        self.meteringHour = meteringHour
    }

    func throttle(next count: Int) {
        throttleBudget.store(max(0, count), ordering: .relaxed)
    }

    /// An answer: status, body, and the error type header for errors.
    struct Reply {
        var status: Int
        var body: [String: Any]
        var errorType: String? { (body["__type"] as? String).map { String($0.split(separator: "#").last ?? "") } }

        static func error(_ status: Int, _ type: String, _ message: String) -> Reply {
            Reply(status: status, body: ["__type": "com.amazonaws.marketplace#\(type)", "message": message])
        }
    }

    /// Handles `POST /`: `headers` with lowercase names, `host` the request's Host header.
    func handle(path: String, headers: [String: String], body: [UInt8]) async throws -> Reply {
        if let refusal = try await verifySignature(path: path, headers: headers, body: body) { return refusal }
        calls.withLock { $0[headers["x-amz-target"] ?? "", default: 0] += 1 }
        if throttleBudget.load(ordering: .relaxed) > 0 {
            throttleBudget.subtract(1, ordering: .relaxed)
            return .error(400, "ThrottlingException", "Rate exceeded")
        }
        guard let input = (try? JSONSerialization.jsonObject(with: Data(body.isEmpty ? Array("{}".utf8) : body))) as? [String: Any] else {
            return .error(400, "SerializationException", "the body is not a JSON object")
        }
        switch headers["x-amz-target"] ?? "" {
        case "AWSMPMeteringService.ResolveCustomer": return try await resolveCustomer(input)
        case "AWSMPMeteringService.BatchMeterUsage": return try await batchMeterUsage(input)
        case "AWSMPEntitlementService.GetEntitlements": return try await getEntitlements(input)
        case let target: return .error(400, "UnknownOperationException", "unknown operation \(target)")
        }
    }

    // MARK: Signature

    private func verifySignature(path: String, headers: [String: String], body: [UInt8]) async throws -> Reply? {
        guard let authorization = headers["authorization"], authorization.hasPrefix("AWS4-HMAC-SHA256 "),
            let credential = Self.field("Credential", in: authorization),
            let signedHeaders = Self.field("SignedHeaders", in: authorization),
            let signature = Self.field("Signature", in: authorization),
            let amzDate = headers["x-amz-date"], let date = Self.parse(amzDate)
        else {
            return .error(400, "MissingAuthenticationTokenException", "Request is missing Authentication Token")
        }
        let scope = credential.split(separator: "/").map(String.init)
        guard scope.count == 5, scope[4] == "aws4_request", amzDate.hasPrefix(scope[1]) else {
            return .error(400, "IncompleteSignatureException", "the credential scope is malformed")
        }
        guard let secret = try await store.secret(forAccessKey: scope[0]) else {
            return .error(400, "UnrecognizedClientException", "The security token included in the request is invalid.")
        }
        guard scope[3] == "aws-marketplace" else {
            return .error(403, "InvalidSignatureException", "Credential should be scoped to correct service: 'aws-marketplace'.")
        }
        guard abs(date.timeIntervalSinceNow) < 15 * 60 else {
            return .error(403, "InvalidSignatureException", "Signature expired: the request time is more than 15 minutes from now.")
        }
        let names = signedHeaders.split(separator: ";").map(String.init)
        let signed = names.compactMap { name in headers[name].map { (name: name, value: $0) } }
        let signer = SigV4Signer(
            credentials: AWSCredentials(
                accessKeyID: scope[0], secretAccessKey: secret,
                sessionToken: names.contains("x-amz-security-token") ? headers["x-amz-security-token"] : nil),
            service: scope[3], region: scope[2])
        let expected = signer.sign(
            .init(
                method: "POST", url: URL(string: "http://\(headers["host"] ?? "localhost")\(path)")!,
                headers: signed, body: body), at: date
        ).signature
        guard expected.count == signature.count,
            zip(expected.utf8, signature.utf8).reduce(0, { $0 | ($1.0 ^ $1.1) }) == 0
        else {
            return .error(
                403, "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided.")
        }
        return nil
    }

    private static func field(_ name: String, in authorization: String) -> String? {
        guard let range = authorization.range(of: name + "=") else { return nil }
        return String(authorization[range.upperBound...].prefix { $0 != "," && $0 != " " })
    }

    private static func parse(_ amzDate: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.date(from: amzDate)
    }

    // MARK: Operations

    private func resolveCustomer(_ input: [String: Any]) async throws -> Reply {
        guard let token = input["RegistrationToken"] as? String, !token.isEmpty else {
            return .error(400, "InvalidTokenException", "RegistrationToken is required")
        }
        switch try await store.resolve(registrationToken: token) {
        case .unknown: return .error(400, "InvalidTokenException", "Registration token is invalid")
        case .expired: return .error(400, "ExpiredTokenException", "Registration token is expired")
        case .customer(let subscription):
            return Reply(
                status: 200,
                body: [
                    "CustomerIdentifier": subscription.customerIdentifier, "CustomerAWSAccountId": subscription.accountID,
                    "ProductCode": subscription.productCode, "LicenseArn": subscription.licenseArn
                ])
        }
    }

    private func getEntitlements(_ input: [String: Any]) async throws -> Reply {
        guard let productCode = input["ProductCode"] as? String else {
            return .error(400, "InvalidParameterException", "ProductCode is required")
        }
        let pageSize = (input["MaxResults"] as? NSNumber)?.intValue ?? 25
        guard (1...25).contains(pageSize) else {
            return .error(400, "InvalidParameterException", "MaxResults must be between 1 and 25")
        }
        let filter = input["Filter"] as? [String: [String]] ?? [:]
        let matching = try await store.entitlements().filter { entry in
            entry.subscription.productCode == productCode
                && filter.allSatisfy { key, values in
                    switch key {
                    case "CUSTOMER_IDENTIFIER": values.contains(entry.subscription.customerIdentifier)
                    case "CUSTOMER_AWS_ACCOUNT_ID": values.contains(entry.subscription.accountID)
                    case "DIMENSION": values.contains(entry.dimension)
                    case "LICENSE_ARN": values.contains(entry.subscription.licenseArn)
                    default: false
                    }
                }
        }
        let start =
            (input["NextToken"] as? String).flatMap { Data(base64Encoded: $0) }
            .flatMap { Int(String(decoding: $0, as: UTF8.self).replacingOccurrences(of: "offset:", with: "")) } ?? 0
        let page = matching.dropFirst(start).prefix(pageSize)
        var body: [String: Any] = [
            "Entitlements": page.map { entry in
                [
                    "ProductCode": entry.subscription.productCode, "Dimension": entry.dimension,
                    "CustomerIdentifier": entry.subscription.customerIdentifier,
                    "CustomerAWSAccountId": entry.subscription.accountID, "Value": ["IntegerValue": entry.quantity],
                    "ExpirationDate": entry.subscription.endsAt.timeIntervalSince1970, "LicenseArn": entry.subscription.licenseArn
                ] as [String: Any]
            }
        ]
        if start + pageSize < matching.count {
            body["NextToken"] = Data("offset:\(start + pageSize)".utf8).base64EncodedString()
        }
        return Reply(status: 200, body: body)
    }
}
