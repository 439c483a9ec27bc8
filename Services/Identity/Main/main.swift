import IdentityService
import ServiceRuntime

await ServiceMain.run(IdentityDefinition.make())
