import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import Synchronization
import Tracing
import X509
import _CryptoExtras

/// Checks that an SNS message really comes from Amazon SNS and is meant for us, as AWS's
/// "Verifying the signatures of Amazon SNS messages" asks: an expected `TopicArn`, a
/// `SigningCertURL` on a trusted origin, a certificate valid now, and a SignatureVersion 1
/// (SHA1withRSA) or 2 (SHA256withRSA) signature over the message's canonical string. Also confirms
/// subscriptions, fetching `SubscribeURL` only from a trusted origin.
public final class SNSReceiver: Sendable {
    public struct Configuration: Sendable {
        /// Topics we subscribed to; messages from any other are refused.
        public var topicArns: Set<String>
        /// `scheme://host[:port]` of the hosts that may serve certificates and SubscribeURLs.
        /// On AWS, `https://sns.us-east-1.amazonaws.com`.
        public var trustedOrigins: [String]
        public var fetchTimeout: Duration = .seconds(5)
        /// Certificate fetches a minute at most: SNS signs with one certificate for months, so a
        /// stream of new certificate names is an attacker making us fetch on its behalf.
        public var certificateFetchesPerMinute = 10
        public var now: @Sendable () -> Date = { Date() }

        public init(topicArns: Set<String>, trustedOrigins: [String]) {
            self.topicArns = topicArns
            self.trustedOrigins = trustedOrigins
        }
    }

    private let configuration: Configuration
    private let origins: [Origin]
    private let http: HTTPClient
    /// Certificates by URL; SNS signs with few of them, so this stays small. A URL that did not
    /// give a certificate is remembered too (nil), so a forged name costs one fetch, not one each.
    private let certificates = Mutex<[String: Certificate?]>([:])
    private let fetchBudget = Mutex((windowStart: ContinuousClock.now, fetches: 0))

    /// Follows no redirects: a trusted host must not be able to send us to an untrusted one.
    /// Its own spans are off: `get` makes one without the URL's query (a SubscribeURL's holds the
    /// subscription's token).
    private static let withoutRedirects: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.tracing.tracer = nil
        return HTTPClient(configuration: configuration)
    }()

    /// `http` defaults to a client that follows no redirects.
    public init(configuration: Configuration, http: HTTPClient? = nil) throws(SNSMessageError) {
        var origins: [Origin] = []
        for text in configuration.trustedOrigins {
            guard let origin = Origin(text), origin.path.isEmpty || origin.path == "/" else {
                throw .malformed("trusted origin '\(text)' must be scheme://host[:port]")
            }
            origins.append(origin)
        }
        self.configuration = configuration
        self.origins = origins
        self.http = http ?? Self.withoutRedirects
    }

    /// Throws unless SNS sent `message` on one of our topics.
    public func verify(_ message: SNSMessage) async throws(SNSMessageError) {
        guard configuration.topicArns.contains(message.topicArn) else {
            throw .untrusted("topic \(message.topicArn) is not one this endpoint subscribes to")
        }
        let digestName: String
        switch message.signatureVersion {
        case "1": digestName = "SHA1"
        case "2": digestName = "SHA256"
        default: throw .untrusted("SignatureVersion must be 1 or 2, got '\(message.signatureVersion)'")
        }
        guard let signature = Data(base64Encoded: message.signature), !signature.isEmpty else {
            throw .untrusted("Signature is not base64")
        }
        guard isTrusted(message.signingCertURL), Self.isCertificateName(message.signingCertURL) else {
            throw .untrusted("SigningCertURL is not a certificate on a trusted SNS host")
        }
        let certificate = try await certificate(at: message.signingCertURL)
        let now = configuration.now()
        guard certificate.notValidBefore <= now, now <= certificate.notValidAfter else {
            throw .untrusted("the signing certificate is not valid now")
        }
        guard let key = _RSA.Signing.PublicKey(certificate.publicKey) else {
            throw .untrusted("the signing certificate does not hold an RSA key")
        }
        let signed = Data(SNSMessage.stringToSign(message.fields).utf8)
        let rsaSignature = _RSA.Signing.RSASignature(rawRepresentation: signature)
        let valid =
            digestName == "SHA1"
            ? key.isValidSignature(rsaSignature, for: Insecure.SHA1.hash(data: signed), padding: .insecurePKCS1v1_5)
            : key.isValidSignature(rsaSignature, for: SHA256.hash(data: signed), padding: .insecurePKCS1v1_5)
        guard valid else { throw .untrusted("the signature does not match the message") }
    }

    /// Confirms a verified SubscriptionConfirmation by fetching its SubscribeURL.
    public func confirmSubscription(_ message: SNSMessage) async throws(SNSMessageError) {
        guard message.kind == .subscriptionConfirmation, let url = message.subscribeURL else {
            throw .malformed("only a SubscriptionConfirmation can be confirmed")
        }
        guard isTrusted(url) else { throw .untrusted("SubscribeURL is not on a trusted SNS host") }
        _ = try await fetch(url, what: "SubscribeURL")
    }

    /// Whether `url` is on one of the trusted origins (same scheme, host and port; no user info).
    public func isTrusted(_ url: String) -> Bool {
        guard let candidate = Origin(url) else { return false }
        return origins.contains { $0.scheme == candidate.scheme && $0.host == candidate.host && $0.port == candidate.port }
    }

    /// SNS serves its certificates at `/SimpleNotificationService-<id>.pem` (the id letters and
    /// digits); no other path, no query, no fragment is fetched, so a forged message cannot make
    /// us request what it likes on a trusted host.
    static func isCertificateName(_ url: String) -> Bool {
        guard let components = URLComponents(string: url), components.query == nil, components.fragment == nil,
            components.user == nil, components.password == nil
        else { return false }
        let path = components.percentEncodedPath
        let prefix = "/SimpleNotificationService-", suffix = ".pem"
        guard path.hasPrefix(prefix), path.hasSuffix(suffix), path.utf8.count > prefix.utf8.count + suffix.utf8.count else { return false }
        let id = path.utf8.dropFirst(prefix.utf8.count).dropLast(suffix.utf8.count)
        return id.count <= 64 && id.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }
    }

    // MARK: Fetching

    private func certificate(at url: String) async throws(SNSMessageError) -> Certificate {
        if let cached = certificates.withLock({ $0[url] }) {
            guard let cached else { throw .untrusted("SigningCertURL does not hold a PEM certificate") }
            return cached
        }
        let admitted = fetchBudget.withLock { budget -> Bool in
            if ContinuousClock.now - budget.windowStart >= .seconds(60) { budget = (.now, 0) }
            budget.fetches += 1
            return budget.fetches <= configuration.certificateFetchesPerMinute
        }
        guard admitted else { throw .unavailable("too many new signing certificates this minute") }
        let (status, body) = try await get(url, what: "the signing certificate")
        // A host that answers, but not with a certificate (a 4xx, or something else than PEM), is
        // remembered as such; a 5xx may pass, so it is not.
        guard (200..<300).contains(status) || (400..<500).contains(status) else {
            throw .unavailable("the signing certificate answered HTTP \(status)")
        }
        let certificate = (200..<300).contains(status) ? try? Certificate(pemEncoded: String(buffer: body)) : nil
        certificates.withLock { cache in
            if cache.count >= 32 { cache.removeAll() }
            cache[url] = certificate
        }
        guard let certificate else { throw .untrusted("SigningCertURL does not hold a PEM certificate") }
        return certificate
    }

    /// GETs `url` (already checked as trusted): a 2xx body of at most 64 KiB, within the timeout.
    private func fetch(_ url: String, what: String) async throws(SNSMessageError) -> ByteBuffer {
        let (status, body) = try await get(url, what: what)
        guard (200..<300).contains(status) else { throw .unavailable("\(what) answered HTTP \(status)") }
        return body
    }

    /// GETs `url`: its status and a body of at most 64 KiB, within the timeout.
    private func get(_ url: String, what: String) async throws(SNSMessageError) -> (status: Int, body: ByteBuffer) {
        let span = InstrumentationSystem.tracer.startSpan("GET", context: ServiceContext.current ?? .topLevel, ofKind: .client)
        defer { span.end() }
        span.attributes["sns.fetched"] = what
        if let parts = URLComponents(string: url) {
            span.attributes["server.address"] = parts.host
            span.attributes["url.path"] = parts.path
        }
        do {
            let response = try await http.execute(HTTPClientRequest(url: url), timeout: TimeAmount(configuration.fetchTimeout))
            span.attributes["http.response.status_code"] = Int(response.status.code)
            return (Int(response.status.code), try await response.body.collect(upTo: 64 * 1024))
        } catch {
            span.recordError(error)
            throw .unavailable("cannot fetch \(what): \(error)")
        }
    }

    /// The parts of a URL that decide where it is served from.
    private struct Origin {
        var scheme: String
        var host: String
        var port: Int
        var path: String

        init?(_ text: String) {
            guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
                scheme == "https" || scheme == "http", let host = components.host?.lowercased(), !host.isEmpty,
                components.user == nil, components.password == nil
            else { return nil }
            self.scheme = scheme
            self.host = host
            self.port = components.port ?? (scheme == "https" ? 443 : 80)
            self.path = components.path
        }
    }
}
