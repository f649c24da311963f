import ArgumentParser
import CommandSupport
import Foundation

extension Pcctl {
    struct Nodes: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The cluster's nodes (each heartbeats while it runs).", subcommands: [List.self])

        struct Record: Decodable {
            var name: String
            var address: String
            var labels: [String: String]
            var hostname: String
            var version: String
            var lastHeartbeat: Date
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "ls", abstract: "List live nodes with their address and labels.")
            @OptionGroup var options: ConfigOption
            @Option(help: "text or json.") var format: Sessions.List.OutputFormat = .text

            func run() async throws {
                let client = try AdminClient(options)
                let body = try await client.send(.GET, "/v1/nodes")
                if format == .json { return print(String(decoding: body, as: UTF8.self)) }
                let nodes = try client.decode([Record].self, body)
                guard !nodes.isEmpty else { return print("no nodes have reported in") }
                print("NODE".padding(toLength: 24, withPad: " ", startingAt: 0) + "ADDRESS".padding(toLength: 24, withPad: " ", startingAt: 0)
                    + "VERSION".padding(toLength: 10, withPad: " ", startingAt: 0) + "LABELS")
                for node in nodes {
                    let labels = node.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                    print(node.name.padding(toLength: 24, withPad: " ", startingAt: 0) + node.address.padding(toLength: 24, withPad: " ", startingAt: 0)
                        + node.version.padding(toLength: 10, withPad: " ", startingAt: 0) + labels)
                }
            }
        }
    }
}
