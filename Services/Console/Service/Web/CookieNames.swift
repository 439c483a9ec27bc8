/// The console's cookies. All HttpOnly, SameSite=Lax, Path=/; over https also Secure with the
/// `__Host-` prefix, which a browser accepts only from this host, on `/`, over TLS.
struct CookieJar {
    let https: Bool

    /// identity's session token.
    var session: String { name("session") }
    /// marketplace-link's claim on an AWS Marketplace registration (never AWS's own token).
    var claim: String { name("claim") }
    /// The pre-sign-in secret CSRF tokens derive from.
    var preSession: String { name("csrf") }

    private func name(_ base: String) -> String { https ? "__Host-\(base)" : base }

    /// A `Set-Cookie` value; `maxAge` nil makes it last until the browser closes, 0 deletes it.
    func setCookie(_ name: String, _ value: String, maxAge: Int?) -> String {
        var text = "\(name)=\(value); Path=/; HttpOnly; SameSite=Lax"
        if let maxAge { text += "; Max-Age=\(max(0, maxAge))" }
        if https { text += "; Secure" }
        return text
    }
}
