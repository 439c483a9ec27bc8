import Contracts
import Testing
import WebLook

@testable import ConsoleService

/// The console's rules as values, without sockets: form tokens, where a POST comes from, where a
/// redirect may go, the next onboarding step, the buyer's address, cookies and forms.
struct ConsoleRulesTests {
    @Test func formTokensDeriveFromTheBrowsersSecretAndCompareExactly() {
        let token = FormToken.derive(secret: "session-a")
        #expect(token.utf8.count == 43 && token == FormToken.derive(secret: "session-a"))
        #expect(FormToken.isValid(token, secrets: ["other", "session-a"]))
        #expect(!FormToken.isValid(token, secrets: ["session-b"]))
        #expect(!FormToken.isValid(nil, secrets: ["session-a"]))
        #expect(!FormToken.isValid("", secrets: [""]))
        #expect(!FormToken.isValid(String(repeating: "A", count: 43), secrets: ["session-a"]))
        #expect(!FormToken.isValid(FormToken.derive(secret: ""), secrets: [""]), "an empty secret validates nothing")
    }

    @Test func aPostFromAnotherSiteIsRecognised() {
        let base = RequestOrigin(origin: nil, fetchSite: nil, host: "127.0.0.1:7100", publicOrigin: "https://console.example.com")
        #expect(!base.isCrossSite, "no headers say nothing (curl, old browsers); the form token still decides")
        var request = base
        request.fetchSite = "same-origin"
        #expect(!request.isCrossSite)
        request.fetchSite = "cross-site"
        #expect(request.isCrossSite)
        request.fetchSite = "same-site"
        #expect(request.isCrossSite, "a sibling subdomain is another origin")
        request = base
        request.origin = "https://console.example.com"
        #expect(!request.isCrossSite)
        request.origin = "http://127.0.0.1:7100"
        #expect(!request.isCrossSite, "the address the browser used")
        request.origin = "https://evil.example"
        #expect(request.isCrossSite)
        request.origin = "null"
        #expect(request.isCrossSite, "an opaque origin (data: pages, sandboxed frames) is another site")
        request.fetchSite = "same-origin"
        #expect(!request.isCrossSite, "Fetch Metadata decides: with no-referrer, Chromium sends Origin: null on our own forms")
        request.fetchSite = "cross-site"
        request.origin = "https://console.example.com"
        #expect(request.isCrossSite)
    }

    @Test func redirectsGoOnlyToTheConsolesOwnPaths() {
        #expect(ReturnPath.safe("/organizations/o-1/billing", otherwise: "/") == "/organizations/o-1/billing")
        #expect(ReturnPath.safe("/marketplace/onboarding?x=1", otherwise: "/") == "/marketplace/onboarding?x=1")
        for hostile in ["//evil.example", "/\\evil.example", "https://evil.example", "javascript:alert(1)", "evil", "", "/a b", "/\u{0}x", nil] {
            #expect(ReturnPath.safe(hostile, otherwise: "/fallback") == "/fallback", "\(String(describing: hostile))")
        }
    }

    @Test func theNextOnboardingStep() {
        let needsProfile = OnboardingStep.Buyer(onboardingState: .needsBusinessProfile)
        let complete = OnboardingStep.Buyer(onboardingState: .complete)
        #expect(OnboardingStep.next(buyer: nil, hasPendingClaim: true) == .signIn)
        #expect(OnboardingStep.next(buyer: nil, hasPendingClaim: false) == .signIn)
        #expect(OnboardingStep.next(buyer: needsProfile, hasPendingClaim: true) == .businessProfile, "business details come before the organization")
        #expect(OnboardingStep.next(buyer: needsProfile, hasPendingClaim: false) == .businessProfile)
        #expect(OnboardingStep.next(buyer: complete, hasPendingClaim: true) == .chooseOrganization)
        #expect(OnboardingStep.next(buyer: complete, hasPendingClaim: false) == .organizations)
        #expect(OnboardingStep.chooseOrganization.path == "/marketplace/link")
    }

    @Test func theBuyersAddressBelievesOnlyTrustedProxies() {
        let direct = ClientAddress(trustedProxies: [])
        #expect(direct.resolve(peer: "198.51.100.7", forwardedFor: ["203.0.113.9"]) == "198.51.100.7", "X-Forwarded-For from anyone is ignored")
        let proxied = ClientAddress(trustedProxies: ["10.0.0.2", "10.0.0.3"])
        #expect(proxied.resolve(peer: "10.0.0.2", forwardedFor: ["203.0.113.9"]) == "203.0.113.9")
        #expect(
            proxied.resolve(peer: "10.0.0.2", forwardedFor: ["1.1.1.1, 203.0.113.9, 10.0.0.3"]) == "203.0.113.9",
            "read from the right, past trusted hops; the client's own left part is not believed")
        #expect(proxied.resolve(peer: "10.0.0.2", forwardedFor: []) == "10.0.0.2")
        #expect(proxied.resolve(peer: nil, forwardedFor: []) == "unknown")
    }

    @Test func cookiesAreHttpOnlyLaxAndHostBoundOverHTTPS() {
        let plain = CookieJar(https: false)
        #expect(plain.session == "session")
        #expect(plain.setCookie(plain.session, "v", maxAge: 60) == "session=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=60")
        let secure = CookieJar(https: true)
        #expect(secure.session == "__Host-session" && secure.claim == "__Host-claim" && secure.preSession == "__Host-csrf")
        #expect(secure.setCookie(secure.claim, "c", maxAge: 0) == "__Host-claim=c; Path=/; HttpOnly; SameSite=Lax; Max-Age=0; Secure")
    }

    @Test func formsDecodeAsBrowsersEncodeThem() {
        let form = URLEncodedForm.parse("email=ann%40example.com&fullName=Ann+Lee&empty=&email=second&caf%C3%A9=%E2%9C%93&bad=%ZZ")
        #expect(form["email"] == "ann@example.com", "the first value of a name wins")
        #expect(form["fullName"] == "Ann Lee" && form["empty"] == "" && form["café"] == "✓" && form["bad"] == "%ZZ")
        #expect(URLEncodedForm.parse((0..<100).map { "f\($0)=x" }.joined(separator: "&")).count == 64)
    }

    @Test func awsAccountsAreMaskedAlsoInsideARNs() {
        #expect(AWSAccountMask.account("111122223333") == "********3333")
        #expect(
            AWSAccountMask.arn("arn:aws:license-manager::111122223333:license:l-0123456789abcdef0123456789abcdef")
                == "arn:aws:license-manager::********3333:license:l-0123456789abcdef0123456789abcdef")
        #expect(AWSAccountMask.arn("offer-1234") == "offer-1234" && AWSAccountMask.arn("1234567890123") == "1234567890123")
    }

    @Test func serviceMessagesBecomeFieldErrors() {
        let labels = ["password": "Password"]
        let errors = Problems.fieldErrors(.init(.invalidArgument, "password must be 12 to 256 characters"), labels: labels)
        #expect(errors?.first?.field == "password" && errors?.first?.message == "Password must be 12 to 256 characters.")
        #expect(Problems.fieldErrors(.init(.invalidArgument, "the body is not valid JSON"), labels: labels)?.first?.field == nil)
        #expect(Problems.fieldErrors(.init(.notFound, "password x"), labels: labels) == nil)
        #expect(ConsoleApp.linkToken("http://c.example/verify-email#token=abc&x=1") == "abc")
        #expect(ConsoleApp.linkToken("abc") == "abc")
    }
}
