import AccessTokens
import Foundation
import Hummingbird
import WebLook

/// One request to the console as its pages see it: the cookies, the form, the buyer's address,
/// the signed-in buyer, and the cookies to set on the way out.
final class Visit {
    let request: Request
    let jar: CookieJar
    let clientIP: String
    let form: [String: String]
    var buyer: SignedInBuyer?
    private var cookiesToSet: [String] = []
    private var preSessionSecret: String?

    let sessionToken: String?
    let claim: String?

    init(request: Request, jar: CookieJar, clientIP: String, form: [String: String]) {
        self.request = request
        self.jar = jar
        self.clientIP = clientIP
        self.form = form
        // Parsed once: Hummingbird parses the Cookie header on every `cookies` access.
        let cookies = request.cookies
        func value(_ name: String) -> String? {
            guard let value = cookies[name]?.value, !value.isEmpty, value.utf8.count <= 512 else { return nil }
            return value
        }
        sessionToken = value(jar.session)
        claim = value(jar.claim)
        preSessionSecret = value(jar.preSession)
    }
    var path: String { request.uri.path }

    /// The token this visit's forms carry: from the session once signed in, else from the
    /// pre-session cookie, made (and set) on first need.
    var formToken: String {
        if let session = buyer?.sessionToken { return FormToken.derive(secret: session) }
        if preSessionSecret == nil {
            let secret = SecretToken.generate().value
            preSessionSecret = secret
            setCookie(jar.preSession, secret, maxAge: nil)
        }
        return FormToken.derive(secret: preSessionSecret!)
    }

    /// A POST's form token matches one of this browser's secrets.
    var formTokenIsValid: Bool {
        FormToken.isValid(form[FormToken.fieldName], secrets: [sessionToken, preSessionSecret].compactMap { $0 })
    }

    func setCookie(_ name: String, _ value: String, maxAge: Int?) {
        cookiesToSet.append(jar.setCookie(name, value, maxAge: maxAge))
    }

    func deleteCookie(_ name: String) {
        cookiesToSet.append(jar.setCookie(name, "", maxAge: 0))
    }

    /// A form value, trimmed of surrounding blanks (passwords are passed as typed).
    func field(_ name: String) -> String {
        (form[name] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func render(_ page: Page) -> Response {
        respond(
            RenderedPage(
                status: page.status, html: ByteBuffer(string: PageTemplates.render(page, csrf: formToken, signedInEmail: buyer?.claims.email))))
    }

    /// `page` as this visit would answer it, for a cache of recent pages.
    func rendered(_ page: Page) -> RenderedPage {
        RenderedPage(status: page.status, html: ByteBuffer(string: PageTemplates.render(page, csrf: formToken, signedInEmail: buyer?.claims.email)))
    }

    func respond(_ page: RenderedPage) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        return finish(Response(status: page.status, headers: headers, body: .init(byteBuffer: page.html)))
    }

    /// 303 See Other: after a POST the browser GETs `path`.
    func redirect(_ path: String) -> Response {
        finish(Response(status: .seeOther, headers: [.location: path]))
    }

    private func finish(_ response: Response) -> Response {
        var response = response
        for cookie in cookiesToSet { response.headers.append(.init(name: .setCookie, value: cookie)) }
        return response
    }
}

/// A page as sent: its status and HTML.
struct RenderedPage: Sendable {
    var status: HTTPResponse.Status
    var html: ByteBuffer
}
