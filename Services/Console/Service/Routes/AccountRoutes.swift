import Contracts
import Foundation
import Hummingbird
import RPCCore

/// Signing in and out, creating an account, verifying the address, passwords, and the business
/// details. No message says whether an address has an account.
extension ConsoleApp {
    static let accountLabels = [
        "email": "Email address", "password": "Password", "newPassword": "New password", "fullName": "Full name",
        "token": "Code from the link", "companyName": "Company name", "companySize": "Company size", "country": "Country",
        "jobTitle": "Job title", "useCase": "What you will use it for"
    ]

    func addAccountRoutes(to router: Router<ConsoleRequestContext>) {
        page(router, .get, "/") { visit, _ in
            visit.redirect(OnboardingStep.next(buyer: visit.buyer?.onboarding, hasPendingClaim: visit.claim != nil).path)
        }

        // MARK: Sign in

        page(router, .get, "login") { visit, _ in
            let query = visit.request.uri.queryParameters
            var page = Self.loginPage(email: "", next: query.get("next") ?? "")
            if query.get("verified") != nil { page.notice = "Your email address is verified. Sign in to continue." }
            if query.get("reset") != nil { page.notice = "Your password has been changed. Sign in with the new one." }
            if query.get("signedOut") != nil { page.notice = "You have signed out." }
            return visit.render(page)
        }

        page(router, .post, "login", retry: { visit in Self.loginPage(email: visit.field("email"), next: visit.field("next")) }) { [self] visit, _ in
            let email = visit.field("email")
            var page = Self.loginPage(email: email, next: visit.field("next"))
            let login: LoginResponse
            do throws(RPCError) {
                login = try await upstreams.identity.call(
                    Identity.login, LoginRequest(email: email, password: visit.form["password"] ?? ""),
                    options: anonymous(visit))
            } catch {
                switch error.code {
                case .unauthenticated, .invalidArgument:
                    page.attach([PageError(field: "email", message: "The email address or password is wrong.")])
                case .failedPrecondition:
                    page.attach([
                        PageError(
                            field: "email",
                            message:
                                "Verify your email address first: open the link in the email we sent you. No email? Use \"Send the verification email again\" below."
                        )
                    ])
                case .resourceExhausted:
                    page.attach([PageError(field: "password", message: Problems.sentence(error.message))])
                default:
                    throw error
                }
                page.status = error.code == .resourceExhausted ? .tooManyRequests : .unauthorized
                return visit.render(page)
            }
            // A new session at every sign-in; the one this browser had before ends.
            if let previous = visit.sessionToken {
                upstreams.forget(sessionToken: previous)
                _ = try? await upstreams.identity.call(Identity.logout, SessionTokenRequest(sessionToken: previous), options: anonymous(visit))
            }
            visit.setCookie(jar.session, login.sessionToken, maxAge: Int(login.sessionExpiresAt.timeIntervalSinceNow))
            logger.info("signed in", metadata: ["user": "\(login.user.id)"])
            let step = OnboardingStep.next(buyer: .init(onboardingState: login.user.onboardingState), hasPendingClaim: visit.claim != nil)
            let next = step == .businessProfile ? step.path : ReturnPath.safe(visit.field("next"), otherwise: step.path)
            return visit.redirect(next)
        }

        page(router, .post, "logout", retry: { _ in .message(title: "Sign out", "Press \"Sign out\" at the top of the page again.") }) {
            [self] visit, _ in
            if let session = visit.sessionToken {
                upstreams.forget(sessionToken: session)
                _ = try? await upstreams.identity.call(Identity.logout, SessionTokenRequest(sessionToken: session), options: anonymous(visit))
            }
            visit.deleteCookie(jar.session)
            return visit.redirect("/login?signedOut=1")
        }

        // MARK: Create an account, verify the address

        page(router, .get, "register") { visit, _ in visit.render(Self.registerPage(email: "", fullName: "")) }

        page(router, .post, "register", retry: { visit in Self.registerPage(email: visit.field("email"), fullName: visit.field("fullName")) }) {
            [self] visit, _ in
            let email = visit.field("email")
            do throws(RPCError) {
                _ = try await upstreams.identity.call(
                    Identity.register,
                    RegisterRequest(email: email, password: visit.form["password"] ?? "", fullName: visit.field("fullName")),
                    options: anonymous(visit))
            } catch {
                guard error.code == .invalidArgument || error.code == .resourceExhausted else { throw error }
                var page = Self.registerPage(email: email, fullName: visit.field("fullName"))
                page.attach(Problems.fieldErrors(error, labels: Self.accountLabels) ?? [PageError(message: Problems.sentence(error.message))])
                page.status = error.code == .resourceExhausted ? .tooManyRequests : .badRequest
                return visit.render(page)
            }
            // The same page whether or not the address already had an account (identity then
            // emails its owner instead): nobody learns here who has one.
            return visit.render(
                Page(
                    title: "Check your email", template: "check-email",
                    values: [
                        "message":
                            "We have sent an email to \(email). Open the link in it to verify your address; then sign in. Your AWS Marketplace registration, if you have one, waits for you."
                    ]))
        }

        page(router, .get, "verify-email") { visit, _ in visit.render(Self.verifyPage(token: "", askPassword: false)) }

        page(router, .post, "verify-email", retry: { visit in Self.verifyPage(token: "", askPassword: visit.form["newPassword"] != nil) }) {
            [self] visit, _ in
            let token = Self.linkToken(visit.field("token"))
            let newPassword = visit.form["newPassword"].flatMap { $0.isEmpty ? nil : $0 }
            do throws(RPCError) {
                _ = try await upstreams.identity.call(
                    Identity.verifyEmail, VerifyEmailRequest(token: token, newPassword: newPassword), options: anonymous(visit))
            } catch {
                switch error.code {
                case .failedPrecondition where error.message.hasPrefix("this link was sent on request"):
                    var page = Self.verifyPage(token: token, askPassword: true)
                    page.notice = "This link was sent on request, not with your registration: choose a password to finish verifying."
                    if newPassword != nil { page.attach([PageError(field: "newPassword", message: "Choose a new password.")]) }
                    return visit.render(page)
                case .invalidArgument:
                    var page = Self.verifyPage(token: token, askPassword: newPassword != nil)
                    page.attach(Problems.fieldErrors(error, labels: Self.accountLabels) ?? [])
                    page.status = .badRequest
                    return visit.render(page)
                case .notFound, .failedPrecondition:
                    return visit.render(
                        .message(
                            .badRequest, title: "This link does not work", Problems.sentence(error.message),
                            links: [("/resend-verification", "Send the verification email again"), ("/login", "Sign in")]))
                default:
                    throw error
                }
            }
            // Verifying ends every earlier session of the account: sign in again.
            if let session = visit.sessionToken { upstreams.forget(sessionToken: session) }
            visit.deleteCookie(jar.session)
            return visit.redirect("/login?verified=1")
        }

        emailOnlyForm(
            router, path: "resend-verification", title: "Send the verification email again",
            intro: "Enter the address you registered with. If it still needs verifying, we send a new link to it.",
            button: "Send link", method: Identity.resendVerification, request: ResendVerificationRequest.init(email:),
            done: "If that address has an account that still needs verifying, a new link is on its way. The link asks you to choose a password.")

        emailOnlyForm(
            router, path: "forgot-password", title: "Reset your password",
            intro: "Enter your account's email address. We send a link to choose a new password.",
            button: "Send link", method: Identity.requestPasswordReset, request: RequestPasswordResetRequest.init(email:),
            done: "If that address has an account, a link to choose a new password is on its way. It works once, for 24 hours.")

        page(router, .get, "reset-password") { visit, _ in visit.render(Self.resetPage(token: "")) }

        page(router, .post, "reset-password", retry: { _ in Self.resetPage(token: "") }) { [self] visit, _ in
            let token = Self.linkToken(visit.field("token"))
            do throws(RPCError) {
                _ = try await upstreams.identity.call(
                    Identity.resetPassword, ResetPasswordRequest(token: token, newPassword: visit.form["newPassword"] ?? ""),
                    options: anonymous(visit))
            } catch {
                switch error.code {
                case .invalidArgument:
                    var page = Self.resetPage(token: token)
                    page.attach(Problems.fieldErrors(error, labels: Self.accountLabels) ?? [])
                    page.status = .badRequest
                    return visit.render(page)
                case .notFound, .failedPrecondition:
                    return visit.render(
                        .message(
                            .badRequest, title: "This link does not work", Problems.sentence(error.message),
                            links: [("/forgot-password", "Send a new link")]))
                default:
                    throw error
                }
            }
            if let session = visit.sessionToken { upstreams.forget(sessionToken: session) }
            visit.deleteCookie(jar.session)
            return visit.redirect("/login?reset=1")
        }

        // MARK: Business details

        page(router, .get, "profile") { [self] visit, _ in
            let buyer = try requireBuyer(visit)
            let me = try await upstreams.identity.call(Identity.getMe, Empty(), options: asBuyer(visit, buyer))
            return visit.render(
                Self.profilePage(me.businessProfile ?? BusinessProfile(companyName: "", companySize: "", country: "", jobTitle: "", useCase: "")))
        }

        page(router, .post, "profile", retry: { visit in Self.profilePage(Self.profile(from: visit)) }) { [self] visit, _ in
            let buyer = try requireBuyer(visit)
            let profile = Self.profile(from: visit)
            do throws(RPCError) {
                _ = try await upstreams.identity.call(Identity.updateBusinessProfile, profile, options: asBuyer(visit, buyer))
            } catch {
                guard error.code == .invalidArgument else { throw error }
                var page = Self.profilePage(profile)
                page.attach(Problems.fieldErrors(error, labels: Self.accountLabels) ?? [])
                page.status = .badRequest
                return visit.render(page)
            }
            // The access token names the onboarding state: the next page needs a fresh one.
            upstreams.forget(sessionToken: buyer.sessionToken)
            return visit.redirect(OnboardingStep.next(buyer: .init(onboardingState: .complete), hasPendingClaim: visit.claim != nil).path)
        }
    }

    /// A page with one email field whose answer is the same whatever the address (no enumeration).
    private func emailOnlyForm<Request: RPCMessage>(
        _ router: Router<ConsoleRequestContext>, path: RouterPath, title: String, intro: String, button: String,
        method: RPCMethod<Request, AcknowledgedResponse>, request: @escaping @Sendable (String) -> Request,
        done: String
    ) {
        @Sendable func form(_ email: String) -> Page {
            Page(
                title: title, template: "email-form", values: ["title": title, "intro": intro, "button": button, "action": "/\(path)"],
                fields: [.email(email)])
        }
        page(router, .get, path) { visit, _ in visit.render(form("")) }
        page(router, .post, path, retry: { visit in form(visit.field("email")) }) { [self] visit, _ in
            do throws(RPCError) {
                _ = try await upstreams.identity.call(method, request(visit.field("email")), options: anonymous(visit))
            } catch {
                guard error.code == .invalidArgument || error.code == .resourceExhausted else { throw error }
                var page = form(visit.field("email"))
                page.attach(
                    Problems.fieldErrors(error, labels: Self.accountLabels) ?? [PageError(field: "email", message: Problems.sentence(error.message))])
                page.status = error.code == .resourceExhausted ? .tooManyRequests : .badRequest
                return visit.render(page)
            }
            return visit.render(Page(title: "Check your email", template: "check-email", values: ["message": done]))
        }
    }

    // MARK: The forms

    static func loginPage(email: String, next: String) -> Page {
        Page(
            title: "Sign in", template: "login",
            fields: [.email(email), .password(new: false), .hidden("next", ReturnPath.safe(next, otherwise: ""))])
    }

    static func registerPage(email: String, fullName: String) -> Page {
        Page(
            title: "Create an account", template: "register",
            fields: [
                Field(name: "fullName", label: "Full name", value: fullName, autocomplete: "name"),
                .email(email), .password(new: true)
            ])
    }

    static func verifyPage(token: String, askPassword: Bool) -> Page {
        var fields = [Field(name: "token", label: "Code from the link", value: token, autocomplete: "off")]
        if askPassword { fields.append(.password("newPassword", label: "New password", new: true)) }
        return Page(title: "Verify your email address", template: "verify-email", values: ["autosubmit": askPassword ? "no" : "yes"], fields: fields)
    }

    static func resetPage(token: String) -> Page {
        Page(
            title: "Choose a new password", template: "reset-password",
            fields: [
                Field(
                    name: "token", label: "Code from the link", value: token, autocomplete: "off",
                    hint: "Filled in when you open the link from our email; otherwise paste the link."),
                .password("newPassword", label: "New password", new: true)
            ])
    }

    static func profilePage(_ profile: BusinessProfile) -> Page {
        let sizes = BusinessProfile.companySizes.map { size in
            (
                size,
                size.replacingOccurrences(of: "COMPANY_SIZE_", with: "").replacingOccurrences(of: "_TO_", with: " to ")
                    .replacingOccurrences(of: "OVER_", with: "more than ") + " people"
            )
        }
        return Page(
            title: "About your business", template: "profile",
            fields: [
                Field(name: "companyName", label: "Company name", value: profile.companyName, autocomplete: "organization"),
                Field(name: "companySize", label: "Company size", kind: .select(options: sizes), value: profile.companySize),
                Field(
                    name: "country", label: "Country", value: profile.country, autocomplete: "country",
                    hint: "The two-letter code, such as US, DE or JP."),
                Field(name: "jobTitle", label: "Job title", value: profile.jobTitle, autocomplete: "organization-title"),
                Field(name: "useCase", label: "What you will use it for", kind: .textarea, value: profile.useCase)
            ])
    }

    static func profile(from visit: Visit) -> BusinessProfile {
        BusinessProfile(
            companyName: visit.field("companyName"), companySize: visit.field("companySize"), country: visit.field("country"),
            jobTitle: visit.field("jobTitle"), useCase: visit.field("useCase"))
    }

    /// The token from what was pasted: the token itself, or the whole link (`...#token=...`).
    static func linkToken(_ pasted: String) -> String {
        guard let range = pasted.range(of: "token=") else { return pasted }
        return String(pasted[range.upperBound...].prefix { $0 != "&" })
    }
}
