import ConnectTransport
import Contracts
import Foundation
import RPCCore
import TestSupport
import Testing

/// identity as a real process: the whole sign-up journey over HTTP/2, the key-rotation command,
/// and an email that survives `kill -9`.
@Suite(.serialized, .timeLimit(.minutes(3))) struct IdentityProcessTests {
    private func dataDirectory() -> String { NSTemporaryDirectory() + "identity-e2e-\(UUID().uuidString)" }

    @Test func signUpJourneyAgainstTheRunningExecutable() async throws {
        let directory = dataDirectory()
        try await withStarted(ChildProcess(service: "identity", arguments: ["--port", "0", "--data-dir", directory, "--scrypt-log-n", "12"])) {
            process in
            try await withStarted(ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(process.port)"))) { client in
                let email = "journey@example.com"
                let password = "many steps to onboard"

                _ = try await client.call(Identity.register, RegisterRequest(email: email, password: password, fullName: "Journey"))
                let token = try await MaildropReader(directory: directory + "/maildrop").linkToken(to: email)
                _ = try await client.call(Identity.verifyEmail, VerifyEmailRequest(token: token))
                let login = try await client.call(Identity.login, LoginRequest(email: email, password: password))
                let auth = ConnectClient.CallOptions(bearerToken: login.accessToken)
                #expect(try await client.call(Identity.getMe, Empty(), options: auth).onboardingState == .needsBusinessProfile)
                let profile = BusinessProfile(
                    companyName: "Journey GmbH", companySize: "COMPANY_SIZE_51_TO_200", country: "DE",
                    jobTitle: "Founder", useCase: "Committed spend")
                #expect(try await client.call(Identity.updateBusinessProfile, profile, options: auth).onboardingState == .complete)
                let refreshed = try await client.call(Identity.refreshAccessToken, SessionTokenRequest(sessionToken: login.sessionToken))
                #expect(try await client.call(Identity.getMe, Empty(), options: .init(bearerToken: refreshed.accessToken)).businessProfile == profile)

                // A third-party HTTP/2 client sees the same contract.
                let me = try await Curl.post(
                    "http://127.0.0.1:\(process.port)/identity.v1.IdentityService/GetMe", body: "{}",
                    extra: ["--http2-prior-knowledge", "-H", "authorization: Bearer \(refreshed.accessToken)"])
                #expect(me.status == 200 && me.httpVersion == "2" && me.body.contains(#""onboardingState":"COMPLETE""#))

                // The rotation command, against the live service's database.
                let binary = ChildProcess.productsDirectory.appendingPathComponent("identity").path
                let rotated = try await ExternalCommand.run([binary, "rotate-signing-keys", "--data-dir", directory], timeout: .seconds(30))
                #expect(rotated.status == 0 && rotated.stdout.contains("is current"), "\(rotated.stderr)")
                try await eventually(timeout: .seconds(10)) { try await client.call(Identity.getSigningKeys, Empty()).keys.count == 2 }
                #expect(try await client.call(Identity.getMe, Empty(), options: .init(bearerToken: refreshed.accessToken)).email == email)

                _ = try await client.call(Identity.logout, SessionTokenRequest(sessionToken: login.sessionToken))
                await #expect(throws: RPCError.self) {
                    try await client.call(Identity.refreshAccessToken, SessionTokenRequest(sessionToken: login.sessionToken))
                }
                #expect(
                    !process.output.contains(password) && !process.output.contains(token) && !process.output.contains(login.sessionToken),
                    "secrets must never be logged")
            }
        }
    }

    @Test func anEmailQueuedBeforeKillNineIsSentOnceAfterRestart() async throws {
        let directory = dataDirectory()
        let deadMailServer = try await freePort()
        let first = try await ChildProcess(
            service: "identity",
            arguments: [
                "--port", "0", "--data-dir", directory, "--scrypt-log-n", "12", "--smtp-url", "smtp+plain://127.0.0.1:\(deadMailServer)"
            ])
        let client = try ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(first.port)"))
        _ = try await client.call(Identity.register, RegisterRequest(email: "crash@example.com", password: "survives being killed", fullName: "C"))
        await client.close()
        let database = directory + "/identity.sqlite"
        let pending = try await ExternalCommand.run(
            ["sqlite3", database, "SELECT count(*) FROM email_outbox WHERE sent_at IS NULL"], timeout: .seconds(10))
        #expect(pending.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        first.signal(SIGKILL)
        _ = await first.waitForExit(timeout: .seconds(5))

        // Restarted with the maildrop as its transport: the queued email goes out, once.
        try await withStarted(ChildProcess(service: "identity", arguments: ["--port", "0", "--data-dir", directory, "--scrypt-log-n", "12"])) {
            second in
            let maildrop = directory + "/maildrop"
            _ = try await MaildropReader(directory: maildrop).linkToken(to: "crash@example.com")
            try await Task.sleep(for: .seconds(2))
            let files = try FileManager.default.contentsOfDirectory(atPath: maildrop).filter { $0.hasSuffix(".eml") }
            #expect(files.count == 1)
            let sent = try await ExternalCommand.run(
                ["sqlite3", database, "SELECT count(*) FROM email_outbox WHERE sent_at IS NOT NULL"], timeout: .seconds(10))
            #expect(sent.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        }
    }
}
