/// The names services present in their credentials (`TRUSTED_SERVICES` entries, client
/// certificate common names), so each internal-only method can list who may call it.
public enum ServiceNames {
    public static let identity = "identity"
    public static let organization = "organization"
    public static let marketplaceLink = "marketplace-link"
    public static let console = "console"
    /// The product's data plane, which reports its customers' usage.
    public static let usageReporter = "usage-reporter"
    /// A person's tooling (support scripts, the load checker), never a user's browser.
    public static let `operator` = "operator"
}

/// Where each service listens when run with its default port on this machine (`run-local.sh`):
/// the default of every peer URL flag.
public enum LocalServiceURLs {
    public static let identity = "http://127.0.0.1:7101"
    public static let organization = "http://127.0.0.1:7102"
    public static let marketplaceLink = "http://127.0.0.1:7103"
    public static let awsMarketplaceSimulator = "http://127.0.0.1:7199"
}
