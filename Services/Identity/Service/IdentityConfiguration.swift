import ArgumentParser
import Foundation
import NIOCore
import RPCCore
import ServiceRuntime

/// Identity's own flags, beside the ones every service takes. Each can also be given as its
/// environment variable, like the common ones.
public struct IdentityOptions: ParsableArguments, Sendable {
    @Option(help: "Base URL of the web console; links in emails point there (PUBLIC_BASE_URL).") var publicBaseURL: String?
    @Option(help: "From header of outgoing email (MAIL_FROM).") var mailFrom: String?
    @Option(
        help:
            "Mail server: smtp://user:password@host:587; smtp+starttls:// requires TLS (SMTP_URL, or a file in SMTP_URL_FILE). Without it, email goes to the maildrop."
    )
    var smtpURL: String?
    @Option(help: "PEM CA bundle trusted for the mail server's STARTTLS (SMTP_CA).") var smtpCA: String?
    @Option(help: "Directory that receives outgoing email as .eml files when no SMTP_URL is set; default <data-dir>/maildrop (MAILDROP_DIR).")
    var maildropDir: String?
    @Option(help: "scrypt cost: N = 2^value, 10 to 20; default 17 (SCRYPT_LOG_N).") var scryptLogN: Int?
    @Option(help: "Threads hashing passwords at once; default one per core (HASHING_THREADS).") var hashingThreads: Int?

    public init() {}

    public func configuration(settings: ServiceSettings, environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> IdentityConfiguration
    {
        func pick(_ flag: String?, _ variable: String) -> String? { ServiceOptions.resolve(flag, variable, environment: environment) }
        func number(_ flag: Int?, _ variable: String) throws -> Int? {
            guard let text = pick(flag.map(String.init), variable) else { return nil }
            guard let value = Int(text) else { throw ConfigurationError("\(variable) must be a whole number, got '\(text)'") }
            return value
        }
        let logN = try number(scryptLogN, "SCRYPT_LOG_N") ?? ScryptParameters.recommended.logN
        guard (10...20).contains(logN) else { throw ConfigurationError("--scrypt-log-n must be 10 to 20, got \(logN)") }
        let threads = try number(hashingThreads, "HASHING_THREADS") ?? System.coreCount
        guard (1...64).contains(threads) else { throw ConfigurationError("--hashing-threads must be 1 to 64") }
        let base = pick(publicBaseURL, "PUBLIC_BASE_URL") ?? "http://127.0.0.1:7100"
        guard let url = URL(string: base), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
            throw ConfigurationError("--public-base-url must be an http(s) URL, got '\(base)'")
        }
        let mail: IdentityConfiguration.MailDelivery
        if let smtp = try ServiceOptions.resolveSecret(smtpURL, "SMTP_URL", environment: environment) {
            mail = .smtp(try SMTPSettings(url: smtp, trustedCAPath: pick(smtpCA, "SMTP_CA")))
        } else {
            mail = .maildrop(directory: pick(maildropDir, "MAILDROP_DIR") ?? (settings.dataDirectory as NSString).appendingPathComponent("maildrop"))
        }
        return IdentityConfiguration(
            publicBaseURL: base.hasSuffix("/") ? String(base.dropLast()) : base,
            mailFrom: pick(mailFrom, "MAIL_FROM") ?? "Marketplace Onboarding <no-reply@localhost>",
            mail: mail, scrypt: ScryptParameters(logN: logN, r: 8, p: 1), hashingThreads: threads)
    }
}

/// Identity's configuration, resolved and checked.
public struct IdentityConfiguration: Sendable {
    enum MailDelivery: Sendable {
        case maildrop(directory: String)
        case smtp(SMTPSettings)
    }

    var publicBaseURL: String
    var mailFrom: String
    var mail: MailDelivery
    var scrypt: ScryptParameters
    var hashingThreads: Int
    var sessions = SessionRules()
    var throttle = LoginThrottlePolicy()
    /// The clock every rule reads; tests move it to expire tokens and locks.
    public var now: @Sendable () -> Date = { Date() }

    /// Where outgoing email ends up, for logs.
    var mailDescription: String {
        switch mail {
        case .maildrop(let directory): "maildrop \(directory)"
        case .smtp(let settings): "smtp \(settings.host):\(settings.port) (\(settings.security))"
        }
    }
}
