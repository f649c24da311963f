import ArgumentParser
import FIPSCrypto
import Foundation
import PrintableText
import SSH
import TerminalQR
import YAMLNodes

/// Options every command that talks to the proxy shares.
struct ProxyOptions: ParsableArguments {
    @Option(help: "The proxy's HTTPS address, HOST:PORT (port 3080 by default on the appliance).") var proxy: String
    @Option(help: "Trust only this certificate for the proxy (its self-signed one: 'pcctl auth export --type tls').") var caCert: String?
    @Flag(help: "Do not check the proxy's certificate (lab use only).") var insecure = false

    func client() throws -> ProxyClient { try ProxyClient(proxy: proxy, caCertificate: caCert, insecure: insecure) }
}

struct Ping: Decodable {
    var clusterName: String
    var messageOfTheDay: String
    var sshProxyAddr: String?

    /// What goes into the profile and, from there, into ssh's arguments, known_hosts patterns
    /// and `pcsh config` (`Profile.check`): names, or the login stops before anything is asked
    /// or written.
    func check() throws {
        do {
            try Profile.checkCluster(clusterName)
            try sshProxyAddr.map(Profile.checkSSHProxy)
        } catch let error as PcshError {
            throw PcshError("\(error.description); not logging in")
        }
    }
}

extension Pcsh {
    struct Setup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Accept an invitation: set your password and enrol a TOTP authenticator app.",
            discussion: "The token comes from your administrator ('pcctl users add' or 'pcctl users reset'). It works once.")
        @OptionGroup var proxy: ProxyOptions
        @Option(help: "The invitation token.") var token: String

        struct Enrolment: Decodable { var user: String; var totpUri: String; var totpSecret: String }

        func run() async throws {
            let client = try proxy.client()
            do {
                let enrolment = try await client.post("/v1/invitations/inspect", ["token": token], as: Enrolment.self)
                print("Setting up user \"\(PrintableText.replaced(enrolment.user))\".")
                // The code only on a terminal: piped output (a script) gets the URI and secret alone.
                var window = winsize()
                let columns = ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &window) == 0 ? Int(window.ws_col) : 0
                if isatty(STDOUT_FILENO) == 1, let code = TerminalQRCode(enrolment.totpUri), code.columns <= columns {
                    print("Scan this with your authenticator app:")
                    code.render().forEach { print($0) }
                    print("Or add the account by hand (paste the URI, or type the secret):")
                } else {
                    print("Add this account to your authenticator app (paste the URI, or type the secret; a terminal of 60 or more columns shows a QR code):")
                }
                print("""
                      \(PrintableText.replaced(enrolment.totpUri))
                      secret: \(PrintableText.replaced(enrolment.totpSecret))
                    """)
                let password = try Prompt.secret("New password (at least 12 characters): ")
                let again = try Prompt.secret("Repeat the password: ")
                guard password == again else { throw PcshError("the two passwords differ; nothing was changed, run setup again") }
                let code = try Prompt.line("Current code from the authenticator app: ").trimmingCharacters(in: .whitespaces)
                struct Accept: Encodable { var token: String; var password: String; var totpCode: String }
                _ = try await client.post("/v1/invitations/accept", Accept(token: token, password: password, totpCode: code), as: [String: String].self)
                print("Done. Log in with: pcsh login --proxy \(proxy.proxy) --user \(PrintableText.replaced(enrolment.user))\(proxy.caCert.map { " --ca-cert \($0)" } ?? "")")
            } catch let error as PcshError {
                throw error.reported()
            }
        }
    }

    struct Login: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Log in with password and one-time code for a short-lived SSH certificate.",
            discussion: """
                Makes a new ECDSA P-256 key, gets it certified for the logins your roles allow, and writes key, \
                certificate and the cluster's host CA (known_hosts) to ~/.pcsh (or $PCSH_HOME). If the cluster has a \
                message of the day, it is shown first and must be acknowledged.
                """)
        @OptionGroup var proxy: ProxyOptions
        @Option(help: "Your Portcullis user name.") var user: String
        @Option(help: "Certificate lifetime, e.g. 1h (at most what your roles allow).") var ttl: String?

        struct Answer: Decodable {
            var certificate: String
            var knownHosts: [String]
            var roles: [String]
            var logins: [String]
            var validBefore: Date

            /// Each file line one line; the profile's names (`Profile.check`) are checked before it is written.
            func check() throws {
                for line in [certificate] + knownHosts where line.contains(where: \.isNewline) {
                    throw PcshError("the proxy's answer holds a line break inside \"\(PrintableText.escaped(String(line.prefix(80))))\"; nothing was written")
                }
            }
        }

        func run() async throws {
            let client = try proxy.client()
            do {
                var ttlSeconds: Int? = nil
                if let ttl {
                    guard let duration = NodeReader.parseDuration(ttl), duration >= .seconds(60) else {
                        throw PcshError("--ttl must be a duration of at least a minute, such as 90m or 8h")
                    }
                    ttlSeconds = Int(duration.components.seconds)
                }
                let ping = try await client.get("/v1/ping", as: Ping.self)
                try ping.check()
                if !ping.messageOfTheDay.isEmpty {
                    print(PrintableText.replaced(ping.messageOfTheDay.replacingOccurrences(of: "\r\n", with: "\n"), keepingLines: true))
                    let answer = try Prompt.line("Type 'yes' to acknowledge this notice and continue: ")
                    guard answer.trimmingCharacters(in: .whitespaces).lowercased() == "yes" else { throw PcshError("notice not acknowledged; not logged in") }
                }
                let password = try Prompt.secret("Password for \(user): ")
                let code = try Prompt.line("One-time code: ").trimmingCharacters(in: .whitespaces)
                // A fresh key per login: the certificate is the credential, and it is short-lived.
                let crypto = try CryptoContext(mode: .nonFIPS)
                let key = try PrivateKey(generate: .ecdsaP256, using: crypto)
                let publicLine = try key.publicKey.authorizedKeyLine(comment: "\(user)@\(ping.clusterName)")
                struct Request: Encodable { var user: String; var password: String; var totpCode: String; var publicKey: String; var ttlSeconds: Int? }
                let answer = try await client.post("/v1/login", Request(user: user, password: password, totpCode: code, publicKey: publicLine, ttlSeconds: ttlSeconds), as: Answer.self)
                try answer.check()
                // A login that is not a name (a role's `*`, or a hostile proxy's) is never handed to ssh.
                let logins = answer.logins.filter(SSHConfigWord.isSafe)
                for login in answer.logins where !SSHConfigWord.isSafe(login) {
                    FileHandle.standardError.write(Data("pcsh: left out the login \"\(PrintableText.escaped(login))\": not a name ssh can be given\n".utf8))
                }
                let profile = Profile(proxy: proxy.proxy, user: user, cluster: ping.clusterName, roles: answer.roles, logins: logins,
                                      validBefore: answer.validBefore, caCertificate: proxy.caCert.map { _ in Profile.proxyCertificateFile.path },
                                      sshProxy: ping.sshProxyAddr)
                do { try profile.check() } catch let error as PcshError { throw PcshError("\(error.description); nothing was written") }

                try Profile.prepareHome()
                try Profile.write(Data(try key.pkcs8PEM().utf8), to: Profile.keyFile)
                try Profile.write(Data((publicLine + "\n").utf8), to: Profile.publicKeyFile)
                try Profile.write(Data((answer.certificate + "\n").utf8), to: Profile.certificateFile)
                try Profile.write(Data((answer.knownHosts.joined(separator: "\n") + "\n").utf8), to: Profile.knownHostsFile)
                if let ca = proxy.caCert {
                    try Profile.write(try Data(contentsOf: URL(fileURLWithPath: ca)), to: Profile.proxyCertificateFile)
                }
                try profile.save()
                Status.show(profile)
            } catch let error as PcshError {
                throw error.reported()
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show who you are logged in as, your roles and logins, and when the certificate expires.")

        func run() async throws {
            do { Self.show(try Profile.load()) } catch let error as PcshError { throw error.reported() }
        }

        static func show(_ profile: Profile) {
            let remaining = profile.validBefore.timeIntervalSinceNow
            let validity = remaining > 0
                ? "\(ISO8601DateFormatter().string(from: profile.validBefore)) (\(Int(remaining) / 3600)h\(Int(remaining) % 3600 / 60)m left)"
                : "EXPIRED at \(ISO8601DateFormatter().string(from: profile.validBefore)): run 'pcsh login' again"
            let shown: (String) -> String = PrintableText.replaced
            print("""
                > Profile:  \(shown(profile.proxy))
                  Cluster:  \(shown(profile.cluster))
                  User:     \(shown(profile.user))
                  Roles:    \(shown(profile.roles.joined(separator: ", ")))
                  Logins:   \(shown(profile.logins.joined(separator: ", ")))
                  Valid:    \(validity)
                  Key:      \(Profile.keyFile.path) (certificate \(Profile.certificateFile.path))
                """)
        }
    }

    struct Logout: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete your key, certificate and profile from this machine.")

        func run() async throws {
            var removed = 0
            for file in Profile.allFiles where FileManager.default.fileExists(atPath: file.path) {
                try FileManager.default.removeItem(at: file)
                removed += 1
            }
            print(removed == 0 ? "not logged in; nothing to remove" : "logged out: key, certificate and profile removed from \(Profile.home.path)")
        }
    }
}

extension PcshError {
    /// Prints the message on standard error; the exit status to end with.
    func reported() -> ExitCode {
        FileHandle.standardError.write(Data("pcsh: \(description)\n".utf8))
        return ExitCode.failure
    }
}
