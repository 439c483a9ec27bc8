import NIOSSL
import X509

/// Certificate and key files for TLS, in PEM.
public struct TLSFiles: Sendable {
    /// The certificate chain we present.
    public var certificatePath: String
    /// Its private key.
    public var privateKeyPath: String
    /// When set, the peer must present a certificate signed by one of these CAs.
    public var clientCAPath: String?

    public init(certificatePath: String, privateKeyPath: String, clientCAPath: String? = nil) {
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.clientCAPath = clientCAPath
    }

    /// A server context offering `h2` and `http/1.1`, requiring client certificates when a CA is set.
    func makeServerContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificatePath).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: privateKeyPath, format: .pem)))
        configuration.applicationProtocols = ["h2", "http/1.1"]
        if let clientCAPath {
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .file(clientCAPath)
        }
        return try NIOSSLContext(configuration: configuration)
    }
}

/// How a client calls over TLS: which CAs it trusts and which certificate, if any, it presents.
public struct TLSClientSettings: Sendable {
    /// CA bundle to verify the server with; nil means the system's trust store.
    public var trustedCAPath: String?
    /// Our client certificate and key, for servers that require one.
    public var clientCertificatePath: String?
    public var clientPrivateKeyPath: String?

    public init(trustedCAPath: String? = nil, clientCertificatePath: String? = nil, clientPrivateKeyPath: String? = nil) {
        self.trustedCAPath = trustedCAPath
        self.clientCertificatePath = clientCertificatePath
        self.clientPrivateKeyPath = clientPrivateKeyPath
    }

    /// The client configuration these settings describe, ALPN left to the caller; throws when a
    /// certificate or key file cannot be read.
    public func makeConfiguration() throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        // Read now, so that a missing file stops the start rather than fail every connection.
        if let trustedCAPath { configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(trustedCAPath)) }
        if let clientCertificatePath, let clientPrivateKeyPath {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(clientCertificatePath).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: clientPrivateKeyPath, format: .pem))
        }
        return configuration
    }

    func makeContext() throws -> NIOSSLContext {
        var configuration = try makeConfiguration()
        configuration.applicationProtocols = ["h2"]
        return try NIOSSLContext(configuration: configuration)
    }
}

/// The service identity a verified TLS client certificate carries: its subject's common name.
enum ClientCertificateIdentity {
    static func commonName(of certificate: NIOSSLCertificate) -> String? {
        guard let der = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: der) else { return nil }
        for relativeName in parsed.subject {
            for attribute in relativeName where attribute.type == .RDNAttributeType.commonName {
                return attribute.value.description
            }
        }
        return nil
    }
}
