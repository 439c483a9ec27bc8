import AWSMarketplaceSimulator

/// Parses the command line and runs aws-marketplace-sim (see `SimulatorCommand`).
@main enum SimulatorMain {
    static func main() async {
        await SimulatorCommand.main()
    }
}
