import AWSMarketplace
import Crypto
import Foundation
import X509
import _CryptoExtras

/// Signs the simulator's Amazon SNS messages the way SNS does (SignatureVersion 2, SHA256withRSA)
/// with a key and self-signed certificate made on first start and kept in the data directory.
/// The certificate is served at the messages' `SigningCertURL`.
struct SNSSigner: Sendable {
    let certificatePEM: String
    private let key: _RSA.Signing.PrivateKey

    /// Loads `sns-signing.key` and `sns-signing.pem` from `directory`, making them the first time.
    init(directory: String) throws {
        let keyPath = (directory as NSString).appendingPathComponent("sns-signing.key")
        let certificatePath = (directory as NSString).appendingPathComponent("sns-signing.pem")
        if let keyPEM = try? String(contentsOfFile: keyPath, encoding: .utf8),
            let certificatePEM = try? String(contentsOfFile: certificatePath, encoding: .utf8)
        {
            key = try _RSA.Signing.PrivateKey(pemRepresentation: keyPEM)
            self.certificatePEM = certificatePEM
            return
        }
        key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let certificateKey = Certificate.PrivateKey(key)
        let name = try DistinguishedName {
            CommonName("sns.us-east-1.amazonaws.com")
            OrganizationName("aws-marketplace-sim")
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: certificateKey.publicKey,
            notValidBefore: Date().addingTimeInterval(-3600), notValidAfter: Date().addingTimeInterval(10 * 365 * 86400),
            issuer: name, subject: name, signatureAlgorithm: .sha256WithRSAEncryption,
            extensions: Certificate.Extensions {}, issuerPrivateKey: certificateKey)
        certificatePEM = try certificate.serializeAsPEM().pemString
        try key.pemRepresentation.write(toFile: keyPath, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keyPath)
        try certificatePEM.write(toFile: certificatePath, atomically: true, encoding: .utf8)
    }

    /// Adds `SignatureVersion` 2 and `Signature` to a message.
    func sign(_ message: [String: String]) throws -> [String: String] {
        var signed = message
        signed["SignatureVersion"] = "2"
        let signature = try key.signature(for: Data(SNSMessage.stringToSign(message).utf8), padding: .insecurePKCS1v1_5)
        signed["Signature"] = signature.rawRepresentation.base64EncodedString()
        return signed
    }
}
