import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import AWSMarketplace

/// The client against a seller-API stand-in that checks signatures with botocore.
@Suite(.timeLimit(.minutes(2))) struct AWSClientTests {
    static let seller = AWSCredentials(accessKeyID: "AKIDSELLEREXAMPLE", secretAccessKey: "seller-secret-key-example")

    private func clients(_ api: ChildProcess, credentials: AWSCredentials = seller, logger: Logger = Logger(label: "aws"))
        -> (MarketplaceMeteringClient, MarketplaceEntitlementClient)
    {
        let transport = AWSJSONClient(
            configuration: .init(
                endpoint: URL(string: "http://127.0.0.1:\(api.port)/")!, region: "us-east-1", credentials: credentials,
                timeout: .seconds(5), maxAttempts: 4, baseDelay: .milliseconds(10), maxDelay: .milliseconds(50)), logger: logger)
        return (MarketplaceMeteringClient(transport: transport), MarketplaceEntitlementClient(transport: transport))
    }

    private func callCounts(_ api: ChildProcess) async throws -> [String: Int] {
        let reply = try await Curl.get("http://127.0.0.1:\(api.port)/calls")
        return (try JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Int]) ?? [:]
    }

    @Test func resolvesACustomerAndNeverLogsTheToken() async throws {
        try await withStarted(ChildProcess(pythonFixture: "aws_seller_api.py", arguments: [])) { api in
            let logs = CapturedLogs()
            var logger = Logger(label: "aws") { _ in logs }
            logger.logLevel = .trace
            let (metering, _) = clients(api, logger: logger)
            let customer = try await metering.resolveCustomer(registrationToken: "good-token")
            #expect(
                customer
                    == ResolvedCustomer(
                        customerIdentifier: "cust-abc123", customerAWSAccountID: "123456789012",
                        productCode: "prod-committed-123",
                        licenseArn: "arn:aws:license-manager::123456789012:license:l-1"))
            #expect(!logs.text.isEmpty)
            #expect(!logs.text.contains("good-token"))
        }
    }

    @Test func expiredTokenIsTypedAndNotRetried() async throws {
        try await withStarted(ChildProcess(pythonFixture: "aws_seller_api.py", arguments: [])) { api in
            let (metering, _) = clients(api)
            await #expect(throws: AWSMarketplaceError(kind: .expiredToken, message: "Registration token is expired", status: 400)) {
                try await metering.resolveCustomer(registrationToken: "expired-token")
            }
            await #expect(throws: AWSMarketplaceError(kind: .invalidToken, message: "Registration token is invalid", status: 400)) {
                try await metering.resolveCustomer(registrationToken: "nonsense")
            }
            let counts = try await callCounts(api)
            #expect(counts["AWSMPMeteringService.ResolveCustomer"] == 2)
        }
    }

    @Test func throttlingIsRetriedThenSucceeds() async throws {
        try await withStarted(ChildProcess(pythonFixture: "aws_seller_api.py", arguments: [])) { api in
            let (metering, _) = clients(api)
            let customer = try await metering.resolveCustomer(registrationToken: "throttle-2-\(UUID())")
            #expect(customer.customerIdentifier == "cust-abc123")
            #expect(try await callCounts(api)["AWSMPMeteringService.ResolveCustomer"] == 3)
        }
    }

    @Test func persistentServerFailureGivesUpAfterMaxAttempts() async throws {
        try await withStarted(ChildProcess(pythonFixture: "aws_seller_api.py", arguments: [])) { api in
            let (metering, _) = clients(api)
            do {
                _ = try await metering.resolveCustomer(registrationToken: "broken")
                Issue.record("a broken service answered")
            } catch let error as AWSMarketplaceError {
                #expect(error.kind == .internalServiceError)
            }
            #expect(try await callCounts(api)["AWSMPMeteringService.ResolveCustomer"] == 4)
        }
    }

    @Test func wrongSecretAndUnknownKeyGetTheAWSErrors() async throws {
        try await withStarted(ChildProcess(pythonFixture: "aws_seller_api.py", arguments: [])) { api in
            let (wrongSecret, _) = clients(api, credentials: AWSCredentials(accessKeyID: "AKIDSELLEREXAMPLE", secretAccessKey: "wrong"))
            do {
                _ = try await wrongSecret.resolveCustomer(registrationToken: "good-token")
                Issue.record("a wrong signature was accepted")
            } catch let error as AWSMarketplaceError {
                #expect(error.kind == .invalidSignature)
            }
            let (unknownKey, _) = clients(api, credentials: AWSCredentials(accessKeyID: "AKIDNOBODY", secretAccessKey: "x"))
            do {
                _ = try await unknownKey.resolveCustomer(registrationToken: "good-token")
                Issue.record("an unknown key was accepted")
            } catch let error as AWSMarketplaceError {
                #expect(error.kind == .unrecognizedClient)
            }
        }
    }

    @Test func entitlementsArePagedThroughAnEmptyPage() async throws {
        try await withStarted(ChildProcess(pythonFixture: "aws_seller_api.py", arguments: [])) { api in
            let (_, entitlements) = clients(api)
            let all = try await entitlements.entitlements(productCode: "prod-committed-123", filter: [.customerIdentifier: ["cust-abc123"]])
            #expect(all.map(\.dimension) == ["seats", "storage", "compute"])
            #expect(all.first?.value == .integer(10))
            #expect(all.first?.expirationDate == Date(timeIntervalSince1970: 1_798_761_600))
            #expect(try await callCounts(api)["AWSMPEntitlementService.GetEntitlements"] == 3)
        }
    }

    @Test func batchMeterUsageReportsPerRecordStatusAndLimitsTheBatch() async throws {
        try await withStarted(ChildProcess(pythonFixture: "aws_seller_api.py", arguments: [])) { api in
            let (metering, _) = clients(api)
            let record = UsageRecord(
                timestamp: Date(timeIntervalSince1970: 1_790_000_000), customerIdentifier: "cust-abc123",
                dimension: "compute", quantity: 3)
            let first = try await metering.batchMeterUsage(productCode: "prod-committed-123", records: [record])
            #expect(first.results.map(\.status) == ["Success"])
            #expect(first.results.first?.usageRecord == record)
            let again = try await metering.batchMeterUsage(productCode: "prod-committed-123", records: [record])
            #expect(again.results.map(\.status) == ["DuplicateRecord"])
            await #expect(throws: AWSMarketplaceError.self) {
                try await metering.batchMeterUsage(productCode: "prod-committed-123", records: Array(repeating: record, count: 26))
            }
            #expect(try await callCounts(api)["AWSMPMeteringService.BatchMeterUsage"] == 2)
        }
    }

    @Test func errorTypesLoseTheirNamespaceAndSuffix() {
        #expect(AWSMarketplaceError.errorType(header: nil, bodyType: "com.amazonaws.marketplace#ThrottlingException") == "ThrottlingException")
        #expect(
            AWSMarketplaceError.errorType(header: "ExpiredTokenException:http://internal.amazon.com/coral/", bodyType: "x#Other")
                == "ExpiredTokenException")
        #expect(AWSMarketplaceError.errorType(header: nil, bodyType: "InvalidTokenException") == "InvalidTokenException")
        #expect(AWSMarketplaceError.errorType(header: nil, bodyType: nil) == nil)
    }

    @Test func credentialsComeFromTheStandardVariables() {
        let credentials = AWSCredentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"])
        #expect(credentials?.accessKeyID == "AKID" && credentials?.sessionToken == "t")
        #expect(AWSCredentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "AKID"]) == nil)
    }
}

/// What a forged SNS message can make us fetch from a trusted host: only SNS's certificate path
/// form, each name once, and at most 10 new certificates a minute.
@Suite(.timeLimit(.minutes(2))) struct SNSCertificateFetchTests {
    @Test func forgedMessagesCannotMakeUsFetchArbitraryPathsOrManyCertificates() async throws {
        try await withStarted(ChildProcess(pythonFixture: "counting_http_server.py", arguments: [])) { host in
            let origin = "http://127.0.0.1:\(host.port)"
            let topic = "arn:aws:sns:us-east-1:287250355862:aws-mp-subscription-notification-prod"
            let receiver = try SNSReceiver(configuration: .init(topicArns: [topic], trustedOrigins: [origin]))
            func message(certificateURL: String) throws -> SNSMessage {
                let fields = [
                    "Type": "Notification", "MessageId": UUID().uuidString, "TopicArn": topic, "Message": "{}",
                    "Timestamp": "2026-12-01T00:00:00.000Z", "SignatureVersion": "2", "Signature": "c2lnbmF0dXJl",
                    "SigningCertURL": certificateURL
                ]
                return try SNSMessage(body: Array(try JSONSerialization.data(withJSONObject: fields)))
            }
            func fetches() async throws -> Int { Int(try await Curl.get(origin + "/_count").body) ?? -1 }

            let otherForms = [
                "/admin", "/SimpleNotificationService-a.pem?x=1", "/dir/SimpleNotificationService-a.pem",
                "/SimpleNotificationService-a.pem#f", "/SimpleNotificationService-../x.pem", "/SimpleNotificationService-.pem",
                "/simplenotificationservice-a.pem", "/SimpleNotificationService-a%2Fb.pem"
            ]
            for form in otherForms {
                await #expect(throws: SNSMessageError.untrusted("SigningCertURL is not a certificate on a trusted SNS host"), "\(form)") {
                    try await receiver.verify(try message(certificateURL: origin + form))
                }
            }
            #expect(try await fetches() == 0)

            // 100 messages naming 50 well-formed certificates: 10 fetched, the rest told to retry later;
            // a name that did not give a certificate is not fetched again.
            var unavailable = 0
            for index in 0..<100 {
                do {
                    try await receiver.verify(try message(certificateURL: origin + "/SimpleNotificationService-forged\(index % 50).pem"))
                } catch {
                    if case SNSMessageError.unavailable = error { unavailable += 1 }
                }
            }
            #expect(try await fetches() == 10)
            #expect(unavailable == 80, "\(unavailable)")
        }
    }
}
