import Contracts
import Crypto
import Foundation

/// An ES256 key pair identity signs access tokens with, named by its key id (`kid`).
public struct SigningKey: Sendable {
    public let keyID: String
    public let privateKey: P256.Signing.PrivateKey

    public init(keyID: String, privateKey: P256.Signing.PrivateKey) {
        self.keyID = keyID
        self.privateKey = privateKey
    }

    /// A new random key with a random id.
    public static func generate() -> SigningKey {
        SigningKey(
            keyID: Base64URL.encode(SymmetricKey(size: .bits128).withUnsafeBytes { Data($0) }),
            privateKey: P256.Signing.PrivateKey())
    }

    /// The public half, as published in the JWK set.
    public var publicJWK: JSONWebKey {
        let raw = privateKey.publicKey.rawRepresentation  // x || y, 32 bytes each
        return JSONWebKey(x: Base64URL.encode(raw.prefix(32)), y: Base64URL.encode(raw.suffix(32)), kid: keyID)
    }

    /// A compact JWS (`header.payload.signature`) of `claims`.
    public func sign(_ claims: AccessTokenClaims) throws -> String {
        let header = #"{"alg":"ES256","typ":"JWT","kid":"\#(keyID)"}"#
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let signingInput = Base64URL.encode(Data(header.utf8)) + "." + Base64URL.encode(try encoder.encode(claims))
        let signature = try privateKey.signature(for: Data(signingInput.utf8))
        return signingInput + "." + Base64URL.encode(ECDSALowS.normalized(signature.rawRepresentation))
    }
}
