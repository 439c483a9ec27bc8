import AccessTokens
import Crypto
import Foundation
import RPCCore

/// The CSRF token every state-changing form carries. It is derived from a secret the browser
/// holds only in an HttpOnly cookie (the session token once signed in, a random pre-session value
/// before), so another site can neither read nor forge it, and any console replica can check it.
enum FormToken {
    static let fieldName = "csrf"

    /// The token a form rendered for `secret` carries.
    static func derive(secret: String) -> String {
        let key = SymmetricKey(data: Data(secret.utf8))
        return Base64URL.encode(Data(HMAC<SHA256>.authenticationCode(for: Data("console form v1".utf8), using: key)))
    }

    /// True when `presented` was derived from one of `secrets`, compared in constant time.
    static func isValid(_ presented: String?, secrets: [String]) -> Bool {
        guard let presented, presented.utf8.count == 43 else { return false }
        var matched = false
        for secret in secrets where !secret.isEmpty {
            matched = constantTimeEquals(Array(derive(secret: secret).utf8), Array(presented.utf8)) || matched
        }
        return matched
    }
}

/// Whether a POST comes from one of the console's own pages, by what the browser says of where
/// the form was. `Sec-Fetch-Site` decides when the browser sends it; otherwise `Origin` (which
/// is `null` on our own forms for browsers that send Fetch Metadata, because of
/// `Referrer-Policy: no-referrer`, hence the order). Neither header (curl, old browsers) says
/// nothing: the form token still decides.
struct RequestOrigin: Equatable {
    var origin: String?
    var fetchSite: String?
    /// `Host` of the request: the console's address as the browser used it.
    var host: String?
    /// Origin of `--public-base-url` (`https://console.example.com`).
    var publicOrigin: String

    var isCrossSite: Bool {
        if let fetchSite { return fetchSite != "same-origin" && fetchSite != "none" }
        guard let origin else { return false }
        if origin == publicOrigin { return false }
        if let host, origin == "http://\(host)" || origin == "https://\(host)" { return false }
        return true
    }
}
