import AWSMarketplace
import Foundation
import TestSupport
import Testing

/// Our SigV4 signer against botocore's, for the same credentials, time and request.
@Suite struct SigV4ParityTests {
    struct Case {
        var method = "POST"
        var url: String
        var headers: [(String, String)]
        var body: String
        var credentials: AWSCredentials
        var region = "us-east-1"
        var timestamp = "20261128T021500Z"
    }

    static let key = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    static let temporary = AWSCredentials(
        accessKeyID: "ASIAEXAMPLE", secretAccessKey: "temporary-secret",
        sessionToken: "FwoGZXIvYXdzEBAaDH+session+token==")
    static let cases: [Case] = [
        Case(
            url: "https://metering.marketplace.us-east-1.amazonaws.com/",
            headers: [("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", "AWSMPMeteringService.ResolveCustomer")],
            body: #"{"RegistrationToken":"abc"}"#, credentials: key),
        Case(
            url: "https://entitlement.marketplace.us-east-1.amazonaws.com/",
            headers: [("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", "AWSMPEntitlementService.GetEntitlements")],
            body: #"{"ProductCode":"p","Filter":{"CUSTOMER_IDENTIFIER":["c"]},"MaxResults":25}"#, credentials: temporary),
        Case(
            url: "http://127.0.0.1:7199/",
            headers: [
                ("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", "AWSMPMeteringService.BatchMeterUsage"),
                ("X-Custom", "  spaced   out\tvalue  ")
            ],
            body: #"{"ProductCode":"p","UsageRecords":[]}"#, credentials: key, region: "eu-west-1"),
        Case(
            url: "https://metering.marketplace.us-west-2.amazonaws.com/",
            headers: [("Content-Type", "application/x-amz-json-1.1"), ("User-Agent", "not-signed/1.0")],
            body: "", credentials: key, region: "us-west-2", timestamp: "20251231T235959Z"),
        Case(
            method: "GET", url: "https://example.amazonaws.com/some%20path/x?b=2&a=1&c=x%2Fy", headers: [], body: "",
            credentials: key)
    ]

    @Test func canonicalRequestAndSignatureMatchBotocore() async throws {
        let input = Self.cases.map { testCase -> [String: Any] in
            [
                "method": testCase.method, "url": testCase.url, "headers": testCase.headers.map { [$0.0, $0.1] },
                "body": testCase.body, "accessKey": testCase.credentials.accessKeyID,
                "secretKey": testCase.credentials.secretAccessKey, "token": testCase.credentials.sessionToken as Any,
                "region": testCase.region, "service": "aws-marketplace", "timestamp": testCase.timestamp
            ]
        }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/sigv4_botocore.py").path
        let result = try await ExternalCommand.run(["python3", script], stdin: try JSONSerialization.data(withJSONObject: input))
        #expect(result.status == 0, "\(result.stderr)")
        let expected = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: String]])
        #expect(expected.count == Self.cases.count)

        let parser = DateFormatter()
        parser.locale = Locale(identifier: "en_US_POSIX")
        parser.timeZone = TimeZone(identifier: "UTC")
        parser.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        for (testCase, botocore) in zip(Self.cases, expected) {
            let signer = SigV4Signer(credentials: testCase.credentials, service: "aws-marketplace", region: testCase.region)
            let ours = signer.sign(
                .init(
                    method: testCase.method, url: URL(string: testCase.url)!,
                    headers: testCase.headers.map { (name: $0.0, value: $0.1) }, body: Array(testCase.body.utf8)),
                at: parser.date(from: testCase.timestamp)!)
            #expect(ours.canonicalRequest == botocore["canonicalRequest"], "\(testCase.url)")
            #expect(ours.stringToSign == botocore["stringToSign"])
            #expect(ours.signature == botocore["signature"])
            #expect(ours.headers.first { $0.name == "authorization" }?.value == botocore["authorization"])
        }
    }
}
