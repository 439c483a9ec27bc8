/// The names services present in their credentials (`TRUSTED_SERVICES` entries, client
/// certificate common names), so each internal-only method can list who may call it.
public enum ServiceNames {
    public static let identity = "identity"
    public static let organization = "organization"
    public static let marketplaceLink = "marketplace-link"
    public static let console = "console"
    /// A person's tooling (support scripts, the load checker), never a user's browser.
    public static let `operator` = "operator"
}
