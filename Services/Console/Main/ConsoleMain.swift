import ConsoleService

/// Parses the command line and runs the console (see `ConsoleCommand`).
@main enum ConsoleMain {
    static func main() async {
        await ConsoleCommand.main()
    }
}
