import ConnectTransport
import Foundation
import RPCCore
import ServiceRuntime

/// Everything the console is configured with, resolved and checked.
public struct ConsoleSettings: Sendable {
    public var host: String
    public var port: Int
    public var identityURL: String
    public var organizationURL: String
    public var marketplaceLinkURL: String
    /// Presented to identity and marketplace-link: internal-only lookups, and the buyer's IP.
    public var credential: ServiceCredential?
    /// How the console calls https:// upstreams (`--peer-ca`; its own certificate when it has one).
    public var peerTLS = TLSClientSettings()
    /// Where buyers reach the console; `https://` turns on `Secure` and `__Host-` cookies.
    public var publicBaseURL: String
    /// Proxies whose `X-Forwarded-For` is believed.
    public var trustedProxies: Set<String>
    /// How long a page waits for an upstream call.
    public var upstreamTimeout: Duration = .seconds(5)
    /// Serve `/_bench/reference`, a static page of this many bytes (benchmarks only; off by default).
    public var referencePageBytes: Int?

    public init(
        host: String = "127.0.0.1", port: Int = 7100, identityURL: String, organizationURL: String, marketplaceLinkURL: String,
        credential: ServiceCredential?, publicBaseURL: String, trustedProxies: Set<String> = []
    ) throws {
        guard publicBaseURL.hasPrefix("http://") || publicBaseURL.hasPrefix("https://"),
            let url = URL(string: publicBaseURL), url.host != nil, url.path.isEmpty || url.path == "/"
        else {
            throw ConfigurationError("--public-base-url must be an origin like https://console.example.com, got '\(publicBaseURL)'")
        }
        self.host = host
        self.port = port
        self.identityURL = identityURL
        self.organizationURL = organizationURL
        self.marketplaceLinkURL = marketplaceLinkURL
        self.credential = credential
        self.publicBaseURL = publicBaseURL.hasSuffix("/") ? String(publicBaseURL.dropLast()) : publicBaseURL
        self.trustedProxies = trustedProxies
    }

    var isHTTPS: Bool { publicBaseURL.hasPrefix("https://") }
}
