import ConnectTransport
import Foundation
import Hummingbird
import Logging
import NIOCore
import RPCCore
import ServiceLifecycle
import ServiceRuntime
import WebLook

/// The console: server-rendered pages over identity, organization and marketplace-link. It keeps
/// no state of its own (cookies carry the session and the pending claim), so any number of
/// replicas can serve the same buyers.
public final class ConsoleApp: Sendable {
    let settings: ConsoleSettings
    let upstreams: Upstreams
    let jar: CookieJar
    let clientAddress: ClientAddress
    let logger: Logger
    /// Billing pages as just rendered for a session (keyed by the session's hash and the
    /// organization): a buyer who reloads, or a BINDING page refreshing itself, is answered
    /// without three upstream calls. Two seconds: a role removed, a link changed shows within that.
    let recentBillingPages = ExpiringCache<String, RenderedPage>(lifetime: .seconds(2), capacity: 10_000)
    /// Largest form a page of ours posts.
    static let maxFormBytes = 64 << 10

    public init(settings: ConsoleSettings, logger: Logger) throws {
        self.settings = settings
        self.logger = logger
        upstreams = try Upstreams(settings: settings, logger: logger)
        jar = CookieJar(https: settings.isHTTPS)
        clientAddress = ClientAddress(trustedProxies: settings.trustedProxies)
    }

    /// Serves until the process is asked to stop; logs `listening` with the bound port. `services`
    /// run beside it and stop after it (the trace exporter).
    public func run(services: [any Service] = []) async throws {
        let logger = self.logger
        let app = Application(
            router: makeRouter(),
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "console"),
            services: services,
            onServerRunning: { channel in
                logger.info("listening", metadata: ["service": "console", "port": "\(channel.localAddress?.port ?? 0)"])
            },
            logger: logger)
        try await app.runService()
        await upstreams.close()
    }

    func makeRouter() -> Router<ConsoleRequestContext> {
        let router = Router(context: ConsoleRequestContext.self)
        // A span per page, continuing a `traceparent` the browser or a proxy sent; the calls the
        // page makes to the services are its children. No headers are recorded (cookies).
        router.add(middleware: TracingMiddleware())
        router.add(middleware: SecurityHeadersMiddleware())
        router.get("healthz") { _, _ in "ok\n" }
        // It keeps no data, so it is ready once it listens; an upstream that is down shows as a page saying so.
        router.get("readyz") { _, _ in "ready\n" }
        router.get(RouterPath(WebLook.stylesheetPath)) { _, _ in Self.asset(WebLook.stylesheet, type: "text/css; charset=utf-8") }
        router.get(RouterPath(StaticAssets.linkTokenScriptPath)) { _, _ in
            Self.asset(StaticAssets.linkTokenScript, type: "text/javascript; charset=utf-8")
        }
        if let bytes = settings.referencePageBytes {
            // The benchmark's yardstick: a static page as large as the page measured, same headers.
            let filler = String(repeating: "x", count: max(0, bytes - 50))
            let html = ByteBuffer(string: "<!doctype html><html><body><!-- \(filler) --></body></html>")
            router.get("_bench/reference") { _, _ in
                Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: html))
            }
        }
        addMarketplaceRoutes(to: router)
        addAccountRoutes(to: router)
        addOrganizationRoutes(to: router)
        // Anything else: a page, with the same headers as every other, rather than a bare 404.
        for method in [HTTPRequest.Method.get, .post] {
            page(router, method, "**", checkForm: false) { visit, _ in
                visit.render(
                    .message(
                        .notFound, title: "Page not found", "There is no page at this address.",
                        links: [("/", "Go to the start page")]))
            }
        }
        return router
    }

    static func asset(_ text: String, type: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: type, .cacheControl: "public, max-age=3600"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    // MARK: Every page goes through here

    /// Registers a page: reads the form (POST), finds the signed-in buyer, refuses a POST that
    /// did not come from one of our own forms (showing the form again via `retry`), and turns
    /// every failure into a page that says what to do next.
    func page(
        _ router: Router<ConsoleRequestContext>, _ method: HTTPRequest.Method, _ path: RouterPath, checkForm: Bool = true,
        retry: (@Sendable (Visit) async throws -> Page)? = nil,
        _ handler: @escaping @Sendable (Visit, ConsoleRequestContext) async throws -> Response
    ) {
        router.on(path, method: method) { [self] request, context in
            var request = request
            var form: [String: String] = [:]
            if method == .post {
                let body = try? await request.collectBody(upTo: Self.maxFormBytes)
                guard let body else {
                    let visit = Visit(request: request, jar: jar, clientIP: clientIP(request, context), form: [:])
                    return visit.render(
                        .message(
                            .contentTooLarge, title: "Too much text",
                            "What you sent is larger than any of our forms takes. Go back, shorten it, and send it again."))
                }
                form = URLEncodedForm.parse(String(buffer: body))
            }
            let visit = Visit(request: request, jar: jar, clientIP: clientIP(request, context), form: form)
            do {
                if let session = visit.sessionToken {
                    visit.buyer = try await upstreams.signedIn(sessionToken: session, clientIP: visit.clientIP)
                    if visit.buyer == nil { visit.deleteCookie(jar.session) }
                }
                if method == .post && checkForm, let refusal = formRefusal(visit) {
                    logger.notice("form refused", metadata: ["path": "\(visit.path)", "reason": "\(refusal)"])
                    var page = try await retry?(visit) ?? .message(title: "Please try again", "Go back, reload the page and submit the form again.")
                    page.status = .forbidden
                    page.errors.insert(PageError(message: "Your form expired, please submit it again."), at: 0)
                    return visit.render(page)
                }
                return try await handler(visit, context)
            } catch is SignInRequired {
                let next = method == .get ? visit.request.uri.description : "/"
                return visit.redirect(
                    "/login?next="
                        + (next.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "/-_.~"))) ?? "/"))
            } catch let error as RPCError {
                if error.code == .unauthenticated, visit.buyer != nil {
                    // The session ended while the page was being made.
                    visit.deleteCookie(jar.session)
                    return visit.redirect("/login")
                }
                return visit.render(Problems.page(for: error, logger: logger))
            } catch {
                logger.error("page failed", metadata: ["path": "\(visit.path)", "error": "\(type(of: error))"])
                return visit.render(
                    .message(
                        .internalServerError, title: "Something went wrong",
                        "Something went wrong on our side. Try again in a minute; if it keeps happening, contact support."))
            }
        }
    }

    /// Why a POST is not from one of our forms, or nil when it is.
    private func formRefusal(_ visit: Visit) -> String? {
        let headers = visit.request.headers
        let origin = RequestOrigin(
            origin: headers[.origin], fetchSite: headers[.init("Sec-Fetch-Site")!],
            host: visit.request.head.authority, publicOrigin: settings.publicBaseURL)
        if origin.isCrossSite { return "posted from another site (origin \(origin.origin ?? "none"), fetch site \(origin.fetchSite ?? "none"))" }
        if !visit.formTokenIsValid { return visit.form[FormToken.fieldName] == nil ? "no form token" : "wrong form token" }
        return nil
    }

    private func clientIP(_ request: Request, _ context: ConsoleRequestContext) -> String {
        clientAddress.resolve(peer: context.remoteAddress?.ipAddress, forwardedFor: request.headers[values: .init("X-Forwarded-For")!])
    }

    /// The signed-in buyer, or a trip to the sign-in page and back.
    func requireBuyer(_ visit: Visit) throws -> SignedInBuyer {
        guard let buyer = visit.buyer else { throw SignInRequired() }
        return buyer
    }

    /// Options for a call on the buyer's behalf.
    func asBuyer(_ visit: Visit, _ buyer: SignedInBuyer) -> ConnectClient.CallOptions {
        upstreams.options(clientIP: visit.clientIP, accessToken: buyer.accessToken)
    }

    /// Options for a call before sign-in.
    func anonymous(_ visit: Visit) -> ConnectClient.CallOptions {
        upstreams.options(clientIP: visit.clientIP)
    }
}

struct SignInRequired: Error {}
