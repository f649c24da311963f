import ArgumentParser
import FIPSCrypto
import Foundation
import PrintableText
import SSH
import UserAPI

/// A node the user's roles can see, as the proxy lists it.
struct VisibleNode: Decodable {
    var name: String
    var labels: [String: String]
    var kind: String
}

extension Pcsh {
    /// The nodes the logged-in user may reach (a request signed with the certificate's key).
    static func visibleNodes(_ profile: Profile) async throws -> [VisibleNode] {
        let request = try signedRequest(.nodeList, subject: "nodes", profile: profile)
        struct List: Encodable { var request: SignedRequest }
        let client = try ProxyClient(proxy: profile.proxy, caCertificate: profile.caCertificate, insecure: false)
        return try await client.post("/v1/nodes/list", List(request: request), as: [VisibleNode].self)
    }

    /// The proxy's SSH side (checked with the profile as it was read).
    static func sshProxy(_ profile: Profile) throws -> ListenAddress {
        guard let address = profile.sshProxy.flatMap(ListenAddress.init(parsing:)) else {
            throw PcshError("the proxy did not say where its SSH side is; run 'pcsh login' again")
        }
        return address
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the nodes your roles let you reach, with their labels.")

        func run() async throws {
            do {
                let profile = try Profile.load()
                let nodes = try await Pcsh.visibleNodes(profile)
                guard !nodes.isEmpty else { return print("no nodes you may reach") }
                // What the proxy lists is shown, never acted on by the terminal (`?` for what would be).
                func column(_ text: String, _ width: Int) -> String {
                    let shown = PrintableText.replaced(text)
                    return shown + String(repeating: " ", count: max(1, width - shown.count))
                }
                print(column("NODE", 24) + column("KIND", 12) + "LABELS")
                for node in nodes {
                    print(column(node.name, 24) + column(node.kind, 12)
                          + PrintableText.replaced(node.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")))
                }
                print("Your logins: \(PrintableText.replaced(profile.logins.joined(separator: ", ")))")
            } catch let error as PcshError {
                throw error.reported()
            }
        }
    }

    struct SSH: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "ssh to a node through the proxy (OpenSSH's ssh with your certificate).",
            discussion: "Portcullis nodes are reached with ssh -J through the proxy; plain OpenSSH hosts in terminating mode (login%node).")
        @Argument(help: "[login@]node") var target: String
        @Argument(parsing: .captureForPassthrough, help: "A command to run instead of a shell.") var command: [String] = []

        func run() async throws {
            do {
                let profile = try Profile.load()
                let parts = target.split(separator: "@", maxSplits: 1).map(String.init)
                let login = parts.count == 2 ? parts[0] : (profile.logins.first ?? "")
                let name = parts.count == 2 ? parts[1] : parts[0]
                guard !login.isEmpty else { throw PcshError("your roles allow no logins") }
                guard let node = try await Pcsh.visibleNodes(profile).first(where: { $0.name == name }) else {
                    throw PcshError("no node \"\(PrintableText.escaped(name))\" that you may reach ('pcsh ls' lists yours)")
                }
                // ssh hands the jump's host to a shell (`-W '[%h]:%p'`): names only.
                guard SSHConfigWord.isSafe(node.name), SSHConfigWord.isSafe(login) else {
                    throw PcshError("\"\(PrintableText.escaped(login))@\(PrintableText.escaped(node.name))\" is not a login and node name ssh can be given")
                }
                let proxy = try Pcsh.sshProxy(profile)
                var arguments = ["ssh"] + (try Pcsh.clientOptions())
                // `--` before the destination: nothing in it (typed, or the proxy's) is taken for an option.
                if node.kind == "openssh" {
                    arguments += ["-p", String(proxy.port), "--", "\(login)%\(node.name)@\(proxy.host)"]
                } else {
                    // The qualified name: the one the node's certificate and the known_hosts pattern share.
                    arguments += ["-J", "\(profile.user)@\(proxy)", "--", "\(login)@\(ClusterHostNames.qualified(node.name, cluster: profile.cluster))"]
                }
                // ArgumentParser keeps a `--` the user typed before the command; ssh's options end
                // before the destination already, so it would reach the remote shell.
                arguments += command.first == "--" ? Array(command.dropFirst()) : command
                let argv = arguments.map { strdup($0) } + [nil]
                // Becomes ssh: its terminal handling, its exit status.
                execv("/usr/bin/ssh", argv)
                throw PcshError("cannot run /usr/bin/ssh: \(String(cString: strerror(errno))) (install openssh-client)")
            } catch let error as PcshError {
                throw error.reported()
            }
        }
    }

    /// `-F` with a configuration of `configLines()` for every host: ssh hands `-F` (not `-o`) on
    /// to the jump's own ssh, so both hops use the certificate and the host CA.
    static func clientOptions() throws -> [String] {
        let file = Profile.home.appendingPathComponent("ssh_config")
        try Profile.write(Data(("# written by pcsh for its own ssh runs\nHost *\n" + configLines().map { "    \($0)\n" }.joined()).utf8), to: file)
        return ["-F", file.path]
    }

    /// Paths quoted: a home directory with a space in its name is one argument still.
    static func configLines() -> [String] {
        ["IdentityFile \"\(Profile.keyFile.path)\"", "CertificateFile \"\(Profile.certificateFile.path)\"", "IdentitiesOnly yes",
         "UserKnownHostsFile \"\(Profile.knownHostsFile.path)\"", "StrictHostKeyChecking yes",
         "KexAlgorithms ecdh-sha2-nistp384,ecdh-sha2-nistp256", "Ciphers aes256-gcm@openssh.com,aes128-gcm@openssh.com",
         "HostKeyAlgorithms ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384,ecdsa-sha2-nistp256"]
    }

    struct Config: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print an OpenSSH configuration so that plain 'ssh NODE' goes through the proxy with your certificate.",
            discussion: """
                Append it to ~/.ssh/config (pcsh config >> ~/.ssh/config), then 'ssh NODE.CLUSTER' (e.g. ssh web1.prod): \
                the names your known_hosts trusts the cluster's host certificates for. Run it again after 'pcsh login' to another proxy.
                """)

        func run() async throws {
            do {
                let profile = try Profile.load()
                // The profile's names were checked as it was read (`Profile.check`); the nodes' are the proxy's of now.
                let proxy = try Pcsh.sshProxy(profile)
                var nodes = try await Pcsh.visibleNodes(profile)
                nodes.removeAll { node in
                    guard !SSHConfigWord.isSafe(node.name) else { return false }
                    FileHandle.standardError.write(Data("pcsh: left out a node whose name cannot go into an ssh configuration: \"\(PrintableText.escaped(node.name))\"\n".utf8))
                    return true
                }
                let settings = Pcsh.configLines().map { "    \($0)" }.joined(separator: "\n")
                var text = """
                    # Portcullis cluster "\(profile.cluster)" for \(profile.user), written by 'pcsh config'.
                    Host portcullis-proxy
                        HostName \(proxy.host)
                        Port \(proxy.port)
                        User \(profile.user)
                    \(settings)

                    """
                text += """
                    Host *.\(profile.cluster)
                        ProxyJump portcullis-proxy
                    \(profile.logins.first.map { "    User \($0)\n" } ?? "")\(settings)

                    """
                for node in nodes where node.kind == "openssh" {
                    text += """
                        # \(node.name) is a plain OpenSSH host: 'pcsh ssh LOGIN@\(node.name)' or ssh -p \(proxy.port) LOGIN%\(node.name)@\(proxy.host)

                        """
                }
                print(text, terminator: "")
            } catch let error as PcshError {
                throw error.reported()
            }
        }
    }
}
