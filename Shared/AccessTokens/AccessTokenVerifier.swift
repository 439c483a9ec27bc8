import Contracts
import Crypto
import Foundation

/// Why an access token was not accepted. Callers answer all of them with `unauthenticated`.
public enum AccessTokenError: Error, Sendable, Equatable {
    /// Not three base64url parts, or a header or payload that does not decode.
    case malformed
    /// Another algorithm than ES256 (including `none`).
    case unsupportedAlgorithm
    /// Signed with a key not in the set the verifier holds.
    case unknownKey(String)
    case badSignature
    case expired
    case wrongIssuer

    /// What to tell the caller.
    public var message: String {
        switch self {
        case .expired: "the access token has expired; get a new one with RefreshAccessToken"
        default: "the access token is not valid; sign in again"
        }
    }
}

/// Checks access tokens against a JWK set: signature (ES256 only), issuer and expiry.
public struct AccessTokenVerifier: Sendable {
    private let keys: [String: P256.Signing.PublicKey]

    /// Keys that are not EC P-256 ES256 signing keys are ignored.
    public init(keySet: JSONWebKeySet) {
        var keys: [String: P256.Signing.PublicKey] = [:]
        for jwk in keySet.keys where jwk.kty == "EC" && jwk.crv == "P-256" && jwk.alg == "ES256" {
            guard let x = Base64URL.decode(jwk.x), let y = Base64URL.decode(jwk.y), x.count == 32, y.count == 32,
                let key = try? P256.Signing.PublicKey(rawRepresentation: x + y)
            else { continue }
            keys[jwk.kid] = key
        }
        self.keys = keys
    }

    /// The key id a token names in its header, without checking anything else.
    public static func keyID(of token: String) -> String? {
        guard let headerPart = token.split(separator: ".", omittingEmptySubsequences: false).first,
            let data = Base64URL.decode(headerPart),
            let header = try? JSONDecoder().decode(Header.self, from: data)
        else { return nil }
        return header.kid
    }

    /// The token's claims, if its signature, issuer and expiry (at `now`) are good.
    public func verify(_ token: String, now: Date = Date()) throws(AccessTokenError) -> AccessTokenClaims {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerData = Base64URL.decode(parts[0]), let payload = Base64URL.decode(parts[1]),
            let signatureData = Base64URL.decode(parts[2]),
            let header = try? JSONDecoder().decode(Header.self, from: headerData)
        else { throw .malformed }
        guard header.alg == "ES256" else { throw .unsupportedAlgorithm }
        guard let kid = header.kid, let key = keys[kid] else { throw .unknownKey(header.kid ?? "") }
        // One token, one spelling: the high-S twin of a valid signature is refused.
        guard ECDSALowS.isLow(signatureData), let signature = try? P256.Signing.ECDSASignature(rawRepresentation: signatureData),
            key.isValidSignature(signature, for: Data("\(parts[0]).\(parts[1])".utf8))
        else { throw .badSignature }
        guard let claims = try? JSONDecoder().decode(AccessTokenClaims.self, from: payload) else { throw .malformed }
        guard claims.issuer == AccessTokenClaims.issuer else { throw .wrongIssuer }
        guard claims.expiresAt > now else { throw .expired }
        return claims
    }

    private struct Header: Decodable {
        var alg: String
        var kid: String?
    }
}
