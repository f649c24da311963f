import AdminAPI
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
                _ = try await AdminClient(options).call(AdminOutcome.self, .POST, "/v1/nodes", json: NewHost(name: name, address: addr, labels: parsed))
                print("node \"\(name)\" (\(addr)) has been added")
            }
        }

        struct Remove: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a registered OpenSSH host.")
            @OptionGroup var options: ConfigOption
            @Argument(help: "The node's name.") var name: String

            func run() async throws {
                _ = try await AdminClient(options).call(AdminOutcome.self, .DELETE, "/v1/nodes/\(try Pcctl.Get.name("node/" + name))")
                print("node \"\(name)\" has been removed")
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "ls", abstract: "List live nodes with their address and labels.")
            @OptionGroup var options: ConfigOption
            @Option(help: "text or json.") var format: OutputFormat = .text

            func run() async throws {
                let nodes = try await AdminClient(options).call([NodeSummary].self, .GET, "/v1/nodes")
                if format == .json { return try OutputFormat.printJSON(nodes) }
                guard !nodes.isEmpty else { return print("no nodes have reported in") }
                var table = Table(columns: [.init("NODE", width: 24), .init("ADDRESS", width: 24), .init("KIND", width: 11), .init("LABELS")])
                for node in nodes {
                    let labels = node.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                    table.add([node.name, node.address, node.openssh ? "openssh" : "portcullis", labels])
                }
                print(table.render())
            }
        }
    }
}
