import Foundation
import NIOSSL
import PostgresNIO
import RPCCore

/// Where a service keeps its data, from `--database-url`: `sqlite:` (the default, a file in
/// `--data-dir`) or `postgres://user[:password]@host[:port]/database[?sslmode=...]`.
public enum DatabaseURL: Sendable {
    case sqlite
    /// PostgreSQL, and the URL with its password hidden (for logs).
    case postgres(PostgresClient.Configuration, redacted: String)

    /// Parses a database URL. `sslmode` is `disable`, `prefer` (the default), `require` (TLS,
    /// unchecked certificate) or `verify-full` (TLS, certificate checked against `sslrootcert` or
    /// the system's CAs). Errors name what is wrong, never the password.
    public init(parsing text: String) throws {
        if text == "sqlite:" || text == "sqlite://" || text == "sqlite" {
            self = .sqlite
            return
        }
        guard text.hasPrefix("postgres://") || text.hasPrefix("postgresql://"), let url = URLComponents(string: text) else {
            throw ConfigurationError("the database URL must be sqlite: or postgres://user@host:port/database")
        }
        guard let host = url.host, !host.isEmpty else { throw ConfigurationError("the database URL names no host") }
        guard let user = url.user, !user.isEmpty else { throw ConfigurationError("the database URL names no user") }
        let database = String(url.path.drop { $0 == "/" })
        guard !database.isEmpty else { throw ConfigurationError("the database URL names no database") }
        let query = Dictionary((url.queryItems ?? []).map { ($0.name, $0.value ?? "") }) { _, last in last }
        let tls: PostgresClient.Configuration.TLS
        switch query["sslmode"] ?? "prefer" {
        case "disable":
            tls = .disable
        case "prefer":
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            tls = .prefer(configuration)
        case "require":
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            tls = .require(configuration)
        case "verify-full":
            var configuration = TLSConfiguration.makeClientConfiguration()
            if let roots = query["sslrootcert"] { configuration.trustRoots = .file(roots) }
            tls = .require(configuration)
        case let mode:
            throw ConfigurationError("sslmode '\(mode)' is not one of disable, prefer, require, verify-full")
        }
        let port = url.port ?? 5432
        guard (1...65535).contains(port) else { throw ConfigurationError("the database URL's port is out of range") }
        let configuration = PostgresClient.Configuration(
            host: host, port: port, username: user, password: url.password?.removingPercentEncoding ?? url.password, database: database,
            tls: tls)
        var redacted = url
        if redacted.password != nil { redacted.password = "***" }
        self = .postgres(configuration, redacted: redacted.string ?? "postgres://\(host)")
    }
}

extension DatabaseURL {
    /// Where the data is, for logs: the data directory, or the URL without its password.
    public func description(dataDirectory: String) -> String {
        switch self {
        case .sqlite: "sqlite in \(dataDirectory)"
        case .postgres(_, let redacted): redacted
        }
    }
}
