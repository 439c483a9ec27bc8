import IdentityService

/// Parses the command line and runs identity (see `IdentityCommand`).
@main enum IdentityMain {
    static func main() async {
        await IdentityCommand.main()
    }
}
