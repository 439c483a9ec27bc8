import MarketplaceLinkService

/// Parses the command line and runs marketplace-link (see `MarketplaceLinkCommand`).
@main enum MarketplaceLinkMain {
    static func main() async {
        await MarketplaceLinkCommand.main()
    }
}
