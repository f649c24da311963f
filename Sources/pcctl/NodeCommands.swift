import ArgumentParser
import CommandSupport
import Foundation

extension Pcctl {
    struct Nodes: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The cluster's nodes: Portcullis nodes report in by themselves; plain OpenSSH hosts are added here.",
            subcommands: [List.self, Add.self, Remove.self])

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Register a plain OpenSSH host, reached through the proxy in terminating mode (ssh -p 3023 login%NAME@proxy).",
                discussion: "The host's sshd must trust 'pcctl auth export --type openssh' (TrustedUserCAKeys, and nothing else of ours) and present a host certificate from 'pcctl auth sign --host NAME' naming it as registered here (the proxy verifies the name, not the address).")
            @OptionGroup var options: ConfigOption
            @Argument(help: "The node's name.") var name: String
            @Option(help: "host:port of its sshd.") var addr: String
            @Option(help: "Comma-separated labels, e.g. env=prod,team=db.") var labels: String?

            func run() async throws {
                var parsed: [String: String] = [:]
                for pair in (labels ?? "").split(separator: ",") {
                    let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                    guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("--labels: '\(pair)' is not name=value") }
                    parsed[parts[0]] = parts[1]
                }
                struct Body: Encodable { var name: String; var address: String; var labels: [String: String] }
                _ = try await AdminClient(options).send(.POST, "/v1/nodes", json: Body(name: name, address: addr, labels: parsed))
                print("node \"\(name)\" (\(addr)) has been added")
            }
        }

        struct Remove: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a registered OpenSSH host.")
            @OptionGroup var options: ConfigOption
            @Argument(help: "The node's name.") var name: String

            func run() async throws {
                _ = try await AdminClient(options).send(.DELETE, "/v1/nodes/\(try Pcctl.Get.name("node/" + name))")
                print("node \"\(name)\" has been removed")
            }
        }

        struct Record: Decodable {
            var name: String
            var address: String
            var labels: [String: String]
            var hostname: String
            var version: String
            var lastHeartbeat: Date
            var openSSH: Bool?
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
                    + "KIND".padding(toLength: 11, withPad: " ", startingAt: 0) + "LABELS")
                for node in nodes {
                    let labels = node.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                    print(node.name.padding(toLength: 24, withPad: " ", startingAt: 0) + node.address.padding(toLength: 24, withPad: " ", startingAt: 0)
                        + (node.openSSH == true ? "openssh" : "portcullis").padding(toLength: 11, withPad: " ", startingAt: 0) + labels)
                }
            }
        }
    }
}
