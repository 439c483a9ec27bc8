import OrganizationService

/// Parses the command line and runs organization (see `OrganizationCommand`).
@main enum OrganizationMain {
    static func main() async {
        await OrganizationCommand.main()
    }
}
