import ArgumentParser
import PortcullisVersion

@main
struct Pcsh: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pcsh",
        abstract: "The Portcullis client: log in for a short-lived SSH certificate and reach servers through the proxy.",
        discussion: "Start with 'pcsh setup' (your invitation), then 'pcsh login'; then 'pcsh ls' and 'pcsh ssh login@node', or 'pcsh config' for plain ssh.",
        version: PortcullisVersion.version,
        subcommands: [Setup.self, Login.self, Status.self, Logout.self, List.self, SSH.self, Config.self, Play.self, Version.self]
    )

    struct Version: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the version.")
        func run() { print("pcsh \(PortcullisVersion.version)") }
    }
}
