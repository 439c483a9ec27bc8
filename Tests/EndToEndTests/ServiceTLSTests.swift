import AccessTokens
import ConnectTransport
import Contracts
import Foundation
import RPCCore
import TestSupport
import Testing

/// TLS between the services with compose/make-dev-ca.sh's development CA: identity requires client
/// certificates; organization trusts the CA for its peer (`--peer-ca`) and presents its own
/// certificate. organization must fetch identity's keys to judge any access token: a token signed
/// by a stranger's key is then refused as unauthenticated; when the TLS between them fails, it is
/// unavailable instead.
@Suite(.serialized, .timeLimit(.minutes(3))) struct ServiceTLSTests {
    static let makeDevCA = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("compose/make-dev-ca.sh").path

    /// What organization answers a token signed by a key identity never published.
    private func answer(organizationArguments: [String], certificates: String, identityPort: Int) async throws -> ConnectCode? {
        let base = NSTemporaryDirectory() + "tls-org-\(UUID().uuidString)"
        return try await withStarted(
            ChildProcess(
                service: "organization",
                arguments: ["--port", "0", "--data-dir", base, "--identity-url", "https://localhost:\(identityPort)"] + organizationArguments)
        ) { organization -> ConnectCode? in
            let scheme = organizationArguments.contains("--tls-cert") ? "https" : "http"
            return try await withStarted(
                ConnectClient(
                    configuration: .init(
                        baseURL: "\(scheme)://localhost:\(organization.port)", tls: TLSClientSettings(trustedCAPath: certificates + "/ca.pem")))
            ) { client -> ConnectCode? in
                let forged = try SigningKey.generate().sign(
                    AccessTokenClaims(
                        subject: "someone", email: "x@example.com", emailVerified: true, onboardingState: .complete, sessionID: "s",
                        issuedAt: Date(), expiresAt: Date() + 600))
                do throws(RPCError) {
                    _ = try await client.call(Organizations.listMyOrganizations, Empty(), options: .init(timeout: .seconds(10), bearerToken: forged))
                    return nil
                } catch {
                    return error.code
                }
            }
        }
    }

    @Test func servicesCallEachOtherOverMutualTLSWithTheDevelopmentCA() async throws {
        let certificates = NSTemporaryDirectory() + "dev-ca-\(UUID().uuidString)"
        let made = try await ExternalCommand.run([Self.makeDevCA, certificates], timeout: .seconds(60))
        #expect(made.status == 0, "\(made.stderr)")
        try await withStarted(
            ChildProcess(
                service: "identity",
                arguments: [
                    "--port", "0", "--data-dir", NSTemporaryDirectory() + "tls-identity-\(UUID().uuidString)", "--scrypt-log-n", "12",
                    "--tls-cert", certificates + "/identity.pem", "--tls-key", certificates + "/identity.key",
                    "--tls-client-ca", certificates + "/ca.pem"
                ])
        ) { identity in
            let ownCertificate = ["--tls-cert", certificates + "/organization.pem", "--tls-key", certificates + "/organization.key"]
            let trustingTheCA = ["--peer-ca", certificates + "/ca.pem"]
            // Both: the keys come over mutual TLS, so the stranger's token is judged and refused.
            let mutual = try await answer(
                organizationArguments: ownCertificate + trustingTheCA, certificates: certificates, identityPort: identity.port)
            #expect(mutual == .unauthenticated)
            // Without its certificate identity refuses the connection; without the CA organization refuses identity's.
            let noCertificate = try await answer(organizationArguments: trustingTheCA, certificates: certificates, identityPort: identity.port)
            #expect(noCertificate == .unavailable)
            let noCA = try await answer(organizationArguments: ownCertificate, certificates: certificates, identityPort: identity.port)
            #expect(noCA == .unavailable)
        }
    }
}
