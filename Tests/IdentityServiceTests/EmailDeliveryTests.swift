import Contracts
import Foundation
import GRDB
import IdentityTestSupport
import RPCCore
import TestSupport
import Testing

/// identity's SMTP client against a mail server we did not write: Python's aiosmtpd, as a real process.
@Suite(.timeLimit(.minutes(3))) struct EmailDeliveryTests {
    struct Received: Decodable {
        var from: String
        var to: [String]
        var data: String
        var authenticated_as: String?
        var tls: Bool
    }

    private func mailbox(_ path: String) -> [Received] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Received.self, from: Data($0.utf8)) }
    }

    /// Runs `body` with a real SMTP server (aiosmtpd) and the file it appends what it receives to.
    private func withSMTPServer<Result>(
        port: Int = 0, extra: [String] = [], _ body: (ChildProcess, String) async throws -> Result
    ) async throws -> Result {
        let path = NSTemporaryDirectory() + "mailbox-\(UUID().uuidString).jsonl"
        return try await withStarted(
            ChildProcess(pythonFixture: "smtp_server.py", arguments: ["--port", String(port), "--mailbox", path] + extra)
        ) { server in try await body(server, path) }
    }

    @Test(arguments: StorageBackend.allCases) func deliversOverPlainSMTP(backend: StorageBackend) async throws {
        try await withSMTPServer { server, path in
            try await withStarted(
                IdentityHarness.start(
                    arguments: [
                        "--smtp-url", "smtp+plain://127.0.0.1:\(server.port)",
                        "--public-base-url", "https://console.example.com/"
                    ], backend: backend)
            ) { identity in
                _ = try await identity.client.call(
                    Identity.register, RegisterRequest(email: "smtp@example.com", password: IdentityHarness.password, fullName: "S"))
                try await eventually(timeout: .seconds(10)) { mailbox(path).count == 1 }
                let message = try #require(mailbox(path).first)
                #expect(message.from == "no-reply@localhost" && message.to == ["smtp@example.com"])
                #expect(message.data.contains("Subject: Verify your email address"))
                #expect(message.data.contains("https://console.example.com/verify-email#token="))
                #expect(!message.tls && message.authenticated_as == nil)
                // The server stores the message before it answers, so the outbox may lag the mailbox a moment.
                try await eventually { try await identity.store.count("SELECT count(*) FROM email_outbox WHERE sent_at IS NOT NULL") == 1 }
                #expect(
                    try await identity.store.count("SELECT count(*) FROM email_outbox WHERE sent_at IS NOT NULL AND body = ''") == 1,
                    "a delivered email's body (with its link token) is not kept")
            }
        }
    }

    @Test func upgradesWithStartTLSAndAuthenticates() async throws {
        let certificates = try await TestCertificates.make()
        try await withSMTPServer(extra: [
            "--starttls", certificates.serverCertificatePath, certificates.serverKeyPath, "--auth", "mailer:s3cret pass"
        ]) { server, path in
            try await withStarted(
                IdentityHarness.start(arguments: [
                    "--smtp-url", "smtp+starttls://mailer:s3cret%20pass@localhost:\(server.port)", "--smtp-ca", certificates.caPath
                ])
            ) { identity in
                _ = try await identity.client.call(
                    Identity.register, RegisterRequest(email: "tls@example.com", password: IdentityHarness.password, fullName: "T"))
                try await eventually(timeout: .seconds(10)) { mailbox(path).count == 1 }
                let lastError = try await identity.database().read { db in try String.fetchOne(db, sql: "SELECT last_error FROM email_outbox") }
                let message = try #require(mailbox(path).first, "last error: \(lastError ?? "none")")
                #expect(message.tls && message.authenticated_as == "mailer")
            }
        }
    }

    /// A server (or a man in the middle) that offers no STARTTLS: with smtp:// the credentials
    /// stay unsent and the email waits; only smtp+plain:// sends them in clear.
    @Test func credentialsAreNeverSentInClearUnlessTheURLSaysPlain() async throws {
        try await withSMTPServer(extra: ["--auth", "mailer:do-not-leak"]) { server, path in
            let identity = try await IdentityHarness.start(arguments: ["--smtp-url", "smtp://mailer:do-not-leak@127.0.0.1:\(server.port)"])
            _ = try await identity.client.call(
                Identity.register, RegisterRequest(email: "clear@example.com", password: IdentityHarness.password, fullName: "C"))
            try await eventually(timeout: .seconds(10)) {
                try identity.database().read { db in try String.fetchOne(db, sql: "SELECT last_error FROM email_outbox") }?.contains("STARTTLS")
                    == true
            }
            #expect(mailbox(path).isEmpty)
            let row = try identity.database().read { db in try Row.fetchOne(db, sql: "SELECT sent_at, failed_at FROM email_outbox") }
            #expect(row?["sent_at"] as Double? == nil && row?["failed_at"] as Double? == nil, "kept for a retry, not dropped")
            await identity.stop()

            try await withStarted(IdentityHarness.start(arguments: ["--smtp-url", "smtp+plain://mailer:do-not-leak@127.0.0.1:\(server.port)"])) {
                plain in
                _ = try await plain.client.call(
                    Identity.register, RegisterRequest(email: "plain@example.com", password: IdentityHarness.password, fullName: "P"))
                try await eventually(timeout: .seconds(10)) { mailbox(path).count == 1 }
                #expect(mailbox(path).first?.authenticated_as == "mailer" && mailbox(path).first?.tls == false)
            }
        }
    }

    @Test func authenticatesWithAuthLoginWhenPlainIsNotOffered() async throws {
        let certificates = try await TestCertificates.make()
        try await withSMTPServer(extra: [
            "--starttls", certificates.serverCertificatePath, certificates.serverKeyPath, "--auth", "mailer:login-only", "--only-login"
        ]) { server, path in
            try await withStarted(
                IdentityHarness.start(arguments: [
                    "--smtp-url", "smtp://mailer:login-only@localhost:\(server.port)", "--smtp-ca", certificates.caPath
                ])
            ) { identity in
                _ = try await identity.client.call(
                    Identity.register, RegisterRequest(email: "login@example.com", password: IdentityHarness.password, fullName: "L"))
                try await eventually(timeout: .seconds(10)) { mailbox(path).count == 1 }
                let message = try #require(mailbox(path).first)
                #expect(message.tls && message.authenticated_as == "mailer")
            }
        }
    }

    @Test(arguments: StorageBackend.allCases) func aRefusedLoginIsPermanentAndNotRetried(backend: StorageBackend) async throws {
        let certificates = try await TestCertificates.make()
        try await withSMTPServer(extra: [
            "--starttls", certificates.serverCertificatePath, certificates.serverKeyPath, "--auth", "mailer:right"
        ]) { server, path in
            try await withStarted(
                IdentityHarness.start(
                    arguments: [
                        "--smtp-url", "smtp+starttls://mailer:wrong@localhost:\(server.port)", "--smtp-ca", certificates.caPath
                    ], backend: backend)
            ) { identity in
                _ = try await identity.client.call(
                    Identity.register, RegisterRequest(email: "refused@example.com", password: IdentityHarness.password, fullName: "R"))
                let failed = try await eventually(timeout: .seconds(10)) {
                    try await identity.store.count("SELECT count(*) FROM email_outbox WHERE failed_at IS NOT NULL") == 1
                }
                #expect(failed)
                #expect(try await identity.store.value("SELECT attempts FROM email_outbox") == "1")
                #expect(try await identity.store.value("SELECT last_error FROM email_outbox")?.contains("535") == true)
                #expect(mailbox(path).isEmpty)
            }
        }
    }

    @Test(arguments: StorageBackend.allCases) func anEmailQueuedWhileTheServerIsDownArrivesOnceItIsBack(backend: StorageBackend) async throws {
        let port = try await freePort()
        try await withStarted(IdentityHarness.start(arguments: ["--smtp-url", "smtp+plain://127.0.0.1:\(port)"], backend: backend)) { identity in
            _ = try await identity.client.call(
                Identity.register, RegisterRequest(email: "patient@example.com", password: IdentityHarness.password, fullName: "P"))
            // Two failed attempts while nothing listens.
            try await eventually(timeout: .seconds(10)) {
                Int(try await identity.store.value("SELECT attempts FROM email_outbox") ?? "0") ?? 0 >= 2
            }
            try await withSMTPServer(port: port) { server, path in
                try await eventually(timeout: .seconds(20)) { mailbox(path).count >= 1 }
                // Give a duplicate every chance to show up before counting.
                try await Task.sleep(for: .seconds(3))
                #expect(mailbox(path).count == 1)
                #expect(mailbox(path).first?.to == ["patient@example.com"])
                #expect(
                    try await eventually {
                        try await identity.store.count("SELECT count(*) FROM email_outbox WHERE sent_at IS NOT NULL") == 1
                    })
            }
        }
    }
}
