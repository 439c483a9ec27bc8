import MarketplaceLinkService
import ServiceRuntime

await ServiceMain.run(MarketplaceLinkDefinition.make())
