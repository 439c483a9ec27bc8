import Foundation
import TestSupport
import Testing

/// The console as a process, driven with curl where a browser is not needed: what a page says
/// when an upstream is down, limits on what a client may post, the buyer's address, and no
/// secret in the log.
@Suite(.serialized, .timeLimit(.minutes(3))) struct ConsoleProcessTests {
    /// A cookie jar and the form token of the page at `path`, as a browser would have them.
    static func formToken(_ url: String, jar: String) async throws -> String {
        let page = try await Curl.get(url, extra: ["-c", jar, "-b", jar])
        #expect(page.status == 200, "\(page.body)")
        let marker = #"name="csrf" value=""#
        let start = try #require(page.body.range(of: marker)).upperBound
        return String(page.body[start...].prefix { $0 != "\"" })
    }

    @Test func anUpstreamThatDoesNotAnswerGetsAPageSayingTryAgainShortly() async throws {
        try await withStarted(ConsoleSystem.start()) { system in
            let jar = NSTemporaryDirectory() + "jar-\(UUID().uuidString)"
            let token = try await Self.formToken(system.consoleURL + "/login", jar: jar)
            await system.identity.stop()
            let answer = try await Curl.post(
                system.consoleURL + "/login", body: "csrf=\(token)&email=a%40example.com&password=whatever+it+is",
                contentType: "application/x-www-form-urlencoded", extra: ["-c", jar, "-b", jar])
            #expect(answer.status == 503)
            #expect(
                answer.body.contains("<h1>Please try again shortly</h1>") && answer.body.contains("Wait a minute, then try again"), "\(answer.body)")
            #expect(!answer.body.contains("RPCError") && !answer.body.contains("unavailable"), "no internals on the page")
            #expect(answer.headers.lowercased().contains("content-security-policy: default-src 'none'"))
        }
    }

    @Test func postsAreBoundedAndTheFulfillmentPostNeedsNoCookie() async throws {
        try await withStarted(ConsoleSystem.start()) { system in
            // A body larger than any form: refused with a page, before anything is called.
            let huge = try temporaryFile(Data(("email=" + String(repeating: "a", count: 200_000)).utf8))
            let tooLarge = try await Curl.post(system.consoleURL + "/register", bodyFile: huge, contentType: "application/x-www-form-urlencoded")
            #expect(tooLarge.status == 413 && tooLarge.body.contains("Too much text"), "\(tooLarge.status) \(tooLarge.body)")
            // The fulfillment POST comes from AWS's site with no cookie and no form token.
            let token = try await system.simulator.subscribeAndSetUp(identity: "frank", offer: "offer-f")
            let setup = try await Curl.post(
                system.consoleURL + "/marketplace/setup", body: "x-amzn-marketplace-token=\(token)",
                contentType: "application/x-www-form-urlencoded", extra: ["-H", "Sec-Fetch-Site: cross-site"])
            #expect(setup.status == 303 && setup.headers.lowercased().contains("location: /marketplace/onboarding"), "\(setup.headers)")
            let cookie = try #require(setup.headers.split(separator: "\r\n").first { $0.lowercased().hasPrefix("set-cookie: claim=") })
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Max-Age="))
            #expect(!cookie.contains(token), "the AWS token is never kept")
            // Any other POST from another site is refused, whatever it carries, and changes nothing.
            let forged = try await Curl.post(
                system.consoleURL + "/register", body: "email=x%40example.com&password=correct+horse+battery&fullName=X",
                contentType: "application/x-www-form-urlencoded", extra: ["-H", "Sec-Fetch-Site: cross-site"])
            #expect(forged.status == 403 && forged.body.contains("Your form expired, please submit it again."))
            #expect(MaildropReader(directory: system.maildrop).emails(to: "x@example.com").isEmpty, "no account was registered")
            #expect(!system.console.output.contains(token), "no AWS token in the console's log")
        }
    }

    @Test func startsWithoutItsUpstreamsAndStopsCleanlyOnSIGTERM() async throws {
        // The console holds no state: it starts (and serves what needs no upstream) before the others are up.
        let launched = ContinuousClock.now
        try await withStarted(ChildProcess(service: "console", arguments: ["--port", "0", "--identity-url", "http://127.0.0.1:1"])) { console in
            #expect(try await Curl.get("http://127.0.0.1:\(console.port)/healthz").status == 200)
            #expect(ContinuousClock.now - launched < .seconds(2))
            let login = try await Curl.get("http://127.0.0.1:\(console.port)/login")
            #expect(login.status == 200 && login.body.contains("<title>Sign in"))
            console.signal(SIGTERM)
            #expect(await console.waitForExit(timeout: .seconds(10)) == 0)
        }
    }

    @Test func aPublicBaseURLThatIsNotAnOriginIsRefusedAtStart() async throws {
        let binary = ChildProcess.productsDirectory.appendingPathComponent("console").path
        let result = try await ExternalCommand.run([binary, "--port", "0", "--public-base-url", "console.example.com/path"], timeout: .seconds(20))
        #expect(result.status != 0 && result.stderr.contains("--public-base-url must be an origin"), "\(result.stderr)")
    }
}
