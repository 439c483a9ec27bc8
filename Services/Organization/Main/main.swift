import OrganizationService
import ServiceRuntime

await ServiceMain.run(OrganizationDefinition.make())
