import AdminAPI
import Appliance
import ArgumentParser
import CommandSupport
import Foundation
import PrintableText
import YAMLNodes

extension Pcctl {
    struct Users: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Manage the people who log in.",
            discussion: """
                A new user (and a reset one) gets an invitation: a one-time token, valid for auth_service.invite_ttl, \
                with which 'pcsh setup' sets a password and enrols a TOTP authenticator. Nothing works until then.
                """,
            subcommands: [Add.self, List.self, Update.self, Reset.self, Remove.self])
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create or replace the resources (roles) in a YAML file.")
        @OptionGroup var options: ConfigOption
        @Option(name: .shortAndLong, help: "The YAML file (several resources separated by ---).") var file: String

        func run() async throws {
            let text = try readTextFile(file)
            let client = try AdminClient(options)
            let results = try await client.call([ResourceResult].self, .POST, "/v1/resources", text: text, file: file)
            for result in results { print("\(result.kind) \"\(PrintableText.escaped(result.name))\" has been \(result.created ? "created" : "updated")") }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show resources: 'roles', 'role/NAME', 'users' or 'locks'.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "roles, role/NAME, users or locks") var what: String

        func run() async throws {
            let client = try AdminClient(options)
            switch what {
            case "roles": print(String(decoding: try await client.send(.GET, "/v1/roles"), as: UTF8.self), terminator: "")
            case "users": try await Users.List.print(client)
            case "locks": try await LockCommand.printLocks(client)
            case let path where path.hasPrefix("role/"):
                print(String(decoding: try await client.send(.GET, "/v1/roles/\(try Self.name(path))"), as: UTF8.self), terminator: "")
            default:
                printError("unknown resource '\(what)': use roles, role/NAME, users or locks")
                throw ExitCode.validationFailure
            }
        }

        static func name(_ path: String) throws -> String {
            let name = String(path.drop { $0 != "/" }.dropFirst())
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.@+".contains($0)) }) else {
                printError("'\(path)' does not name a resource")
                throw ExitCode.validationFailure
            }
            return name
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a resource: role/NAME, user/NAME or lock/NAME.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "role/NAME, user/NAME or lock/NAME") var what: String

        func run() async throws {
            let client = try AdminClient(options)
            let name = try Get.name(what)
            if what.hasPrefix("role/") {
                _ = try await client.call(AdminOutcome.self, .DELETE, "/v1/roles/\(name)")
                print("role \"\(name)\" has been deleted")
            } else if what.hasPrefix("user/") {
                _ = try await client.call(AdminOutcome.self, .DELETE, "/v1/users/\(name)")
                print("user \"\(name)\" has been deleted")
            } else if what.hasPrefix("lock/") {
                _ = try await client.call(AdminOutcome.self, .DELETE, "/v1/locks/\(name)")
                print("lock \"\(name)\" has been removed")
            } else {
                printError("unknown resource '\(what)': use role/NAME, user/NAME or lock/NAME")
                throw ExitCode.validationFailure
            }
        }
    }
}

extension Invitation {
    func print(_ configuration: Configuration, verb: String) {
        let web = configuration.proxyService
        let host = web.publicAddr.isEmpty
            ? "\(["0.0.0.0", "::"].contains(web.webListenAddr.host) ? ProcessInfo.processInfo.hostName : web.webListenAddr.host):\(web.webListenAddr.port)"
            : web.publicAddr
        Swift.print("""
            User "\(user)" has been \(verb). Give them this invitation (valid until \(ISO8601DateFormatter().string(from: expires)), usable once):

              pcsh setup --proxy \(host) --token \(token)

            It sets a password and enrols a TOTP authenticator app; then 'pcsh login --proxy \(host) --user \(user)'.
            """)
    }
}

extension Pcctl.Users {
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a user and print their invitation.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The user name.") var name: String
        @Option(help: "Comma-separated roles (at least one).") var roles: String
        @Option(help: "Comma-separated OS logins, the 'logins' trait roles use as {{internal.logins}}.") var logins: String?

        func run() async throws {
            let client = try AdminClient(options)
            let user = NewUser(name: name, roles: split(roles), traits: logins.map { ["logins": split($0)] })
            try await client.call(Invitation.self, .POST, "/v1/users", json: user).print(try options.load(), verb: "created")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List users, their roles and whether they have enrolled.")
        @OptionGroup var options: ConfigOption

        func run() async throws { try await Self.print(try AdminClient(options)) }

        static func print(_ client: AdminClient) async throws {
            let users = try await client.call([UserSummary].self, .GET, "/v1/users")
            var table = Table(columns: [.init("USER", width: 24), .init("STATUS", width: 10), .init("ROLES", width: 30), .init("LOGINS")])
            for user in users {
                table.add([user.name, user.status, user.roles.joined(separator: ","), (user.traits["logins"] ?? []).joined(separator: ",")])
            }
            Swift.print(table.render())
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a user's roles or logins (takes effect at their next login).")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The user name.") var name: String
        @Option(help: "Comma-separated roles, replacing the current ones.") var roles: String?
        @Option(help: "Comma-separated OS logins, replacing the current ones.") var logins: String?

        func validate() throws {
            if roles == nil && logins == nil { throw ValidationError("nothing to change: give --roles and/or --logins") }
        }

        func run() async throws {
            let client = try AdminClient(options)
            _ = try await client.call(UserSummary.self, .PUT, "/v1/users/\(try Pcctl.Get.name("user/" + name))",
                                      json: UserChange(roles: roles.map(split), traits: logins.map { ["logins": split($0)] }))
            print("user \"\(name)\" has been updated")
        }
    }

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Clear a user's password and authenticator and issue a new invitation.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The user name.") var name: String

        func run() async throws {
            let client = try AdminClient(options)
            try await client.call(Invitation.self, .POST, "/v1/users/\(try Pcctl.Get.name("user/" + name))/reset")
                .print(try options.load(), verb: "reset")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete a user (certificates already issued stay valid until they expire; lock the user to end them now).")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The user name.") var name: String

        func run() async throws {
            _ = try await AdminClient(options).call(AdminOutcome.self, .DELETE, "/v1/users/\(try Pcctl.Get.name("user/" + name))")
            print("user \"\(name)\" has been deleted")
        }
    }
}

/// A file's text, or a printed reason and exit status 1.
func readTextFile(_ path: String) throws -> String {
    do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
        printError("cannot read \(path): \(error.localizedDescription)")
        throw ExitCode.failure
    }
}

func split(_ list: String) -> [String] {
    list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

extension Pcctl {
    struct Auth: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The cluster's certificate authorities.",
            subcommands: [Export.self, Rotate.self, Sign.self])
    }
}

extension Pcctl.Auth {
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print CA public keys in the forms OpenSSH reads.",
            discussion: """
                --type openssh: lines for the TrustedUserCAKeys file of a plain OpenSSH host reached through the
                                proxy (pcctl nodes add): only the proxy's terminating mode gets certificates from this CA.
                --type user:    the CA of the certificates users hold (Portcullis nodes trust it by themselves). Never
                                put it in an OpenSSH host's TrustedUserCAKeys: users' certificates would reach that host
                                around the proxy (no recording, audit, locks or limits). Hosts set up that way before
                                this release: replace the line with --type openssh.
                --type host:    @cert-authority lines for known_hosts, trusting our hosts' certificates for the cluster's names
                                (CLUSTER, *.CLUSTER) and the proxy's SSH address, as pcsh login writes them.
                --type tls:  the proxy's HTTPS certificate (for 'pcsh --ca-cert' when it is self-signed).
                During a rotation both the old and the new key are printed.
                """)
        @OptionGroup var options: ConfigOption
        @Option(help: "openssh, user, host or tls") var type: String

        func run() async throws {
            print(String(decoding: try await AdminClient(options).send(.GET, "/v1/auth/export?type=\(type.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")"), as: UTF8.self), terminator: "")
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rotate a CA: a new key signs from now on; the old one stays trusted for the overlap.",
            discussion: """
                Re-export the CA (pcctl auth export) to every host after starting a rotation. When the overlap has passed \
                (or with --complete) the old key is no longer trusted, and certificates it signed stop working.
                """)
        @OptionGroup var options: ConfigOption
        @Option(help: "user, host or openssh") var type: String
        @Option(help: "How long the old key stays trusted (default: auth_service.max_session_ttl, the longest certificate it signed).")
        var overlap: String?
        @Flag(help: "End the overlap now: only the new key is trusted.") var complete = false

        func run() async throws {
            var seconds: Int? = nil
            if let overlap {
                guard let duration = NodeReader.parseDuration(overlap) else { throw ValidationError("--overlap must be a duration such as 12h or 90m") }
                seconds = Int(duration.components.seconds)
            }
            let result = try await AdminClient(options).call(CARotationResult.self, .POST, "/v1/auth/rotate",
                                                             json: CARotation(type: type, overlapSeconds: seconds, complete: complete))
            // The answer as the API encodes it ({"active": KEY} or {"dropped": [KEY, …]}), as pcctl has always shown it.
            let answer = String(decoding: try AdminAPI.encoder().encode(result), as: UTF8.self)
            print(complete ? "rotation of the \(type) CA completed: \(answer)" : "rotation of the \(type) CA started: \(answer); re-export it to your hosts")
        }
    }

    struct Sign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign a host certificate for an OpenSSH server's host key (HostCertificate in its sshd_config).")
        @OptionGroup var options: ConfigOption
        @Option(help: "Comma-separated host names and addresses the certificate is for.") var host: String
        @Option(help: "The host's public key file (e.g. /etc/ssh/ssh_host_ecdsa_key.pub).") var key: String
        @Option(help: "Validity.") var ttl: String = "720h"
        @Option(name: .shortAndLong, help: "Write the certificate here instead of standard output.") var output: String?

        func run() async throws {
            guard let duration = NodeReader.parseDuration(ttl) else { throw ValidationError("--ttl must be a duration such as 720h") }
            let line = try readTextFile(key).trimmingCharacters(in: .whitespacesAndNewlines)
            let signing = HostSigning(publicKey: line, principals: split(host), ttlSeconds: Int(duration.components.seconds))
            let answer = try await AdminClient(options).call(SignedHost.self, .POST, "/v1/auth/sign", json: signing)
            if let output {
                try (answer.certificate + "\n").write(toFile: output, atomically: true, encoding: .utf8)
                print("wrote \(output)")
            } else {
                print(answer.certificate)
            }
        }
    }
}
