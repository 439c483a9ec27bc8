import OrganizationService
import ServiceRuntime

/// Parses the command line and runs organization (see `OrganizationDefinition`).
@main enum OrganizationMain {
    static func main() async {
        await ServiceMain.run(OrganizationDefinition.make())
    }
}
