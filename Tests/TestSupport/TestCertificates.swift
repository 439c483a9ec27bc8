import ConnectTransport
import Foundation

/// A throw-away CA, a server certificate for 127.0.0.1/localhost and a client certificate whose
/// common name is `caller`, made with the openssl command line in a temporary directory.
public struct TestCertificates: Sendable {
    public let directory: String
    public var caPath: String { directory + "/ca.pem" }
    public var serverCertificatePath: String { directory + "/server.pem" }
    public var serverKeyPath: String { directory + "/server.key" }
    public var clientCertificatePath: String { directory + "/client.pem" }
    public var clientKeyPath: String { directory + "/client.key" }

    public static func make() async throws -> TestCertificates {
        let directory = NSTemporaryDirectory() + "certs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let script = """
            set -e
            cd '\(directory)'
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > server.ext
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj /CN=localhost
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext
            printf 'basicConstraints=CA:FALSE\\nextendedKeyUsage=clientAuth\\n' > client.ext
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout client.key -out client.csr -subj /CN=caller
            openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext
            """
        let result = try await ExternalCommand.run(["bash", "-c", script], timeout: .seconds(30))
        guard result.status == 0 else { throw ProcessFailure("openssl failed: \(result.stderr)") }
        return TestCertificates(directory: directory)
    }

    /// Server TLS files; with `requireClientCertificate`, clients must present one signed by the CA.
    public func serverFiles(requireClientCertificate: Bool) -> TLSFiles {
        TLSFiles(
            certificatePath: serverCertificatePath, privateKeyPath: serverKeyPath,
            clientCAPath: requireClientCertificate ? caPath : nil)
    }
}
