import ArgumentParser
import PortcullisVersion

@main
struct Pcsh: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pcsh",
        abstract: "The Portcullis client: log in for a short-lived SSH certificate and reach servers through the proxy.",
        discussion: "This build has play and version; login, ssh, ls, status and config arrive with the identity and proxy services.",
        version: PortcullisVersion.version,
        subcommands: [Play.self, Version.self]
    )

    struct Version: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the version.")
        func run() { print("pcsh \(PortcullisVersion.version)") }
    }
}
