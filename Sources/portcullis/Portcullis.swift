import Appliance
import ArgumentParser
import CommandSupport
import Compliance
import FIPSCrypto
import Foundation
import PortcullisVersion
import Storage

@main
struct Portcullis: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portcullis",
        abstract: "Portcullis, a FIPS-oriented SSH compliance gateway: the appliance daemon.",
        discussion: """
            Typical first run:
              portcullis configure --output /etc/portcullis/portcullis.yaml --kek-file /etc/portcullis/kek
              portcullis selftest --config /etc/portcullis/portcullis.yaml
              systemctl start portcullis        (runs: portcullis start --config /etc/portcullis/portcullis.yaml)
            """,
        version: PortcullisVersion.version,
        subcommands: [Start.self, Configure.self, SelfTest.self, Version.self]
    )
}

extension Portcullis {
    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the configuration and run the appliance until SIGTERM.",
            discussion: "Logs go to stderr (journald under systemd). Exit status 78 means the configuration is wrong.")

        @OptionGroup var options: ConfigOption

        func run() async throws {
            let configuration = try options.load()
            // The installed control catalog the reports judge by: a broken file is a configuration
            // error (a source tree is not searched: the gateway's start does not hang on report data).
            if FileManager.default.fileExists(atPath: ControlCatalog.installedDirectory) {
                do { _ = try ControlCatalog.load(directory: ControlCatalog.installedDirectory) } catch {
                    printError("control catalog error: \(error)")
                    throw ExitStatus.configuration
                }
            }
            LogSetup.bootstrap(configuration.log)
            do {
                try await PortcullisDaemon.run(configuration: configuration, configPath: options.config)
            } catch {
                printError("cannot start: \(error)")
                throw ExitStatus.software
            }
        }
    }

    struct Configure: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a commented default configuration.",
            discussion: """
                Writes to standard output unless --output is given; an existing file is never replaced \
                without --force. Only with --kek-file is a new random key-encryption key created there \
                (mode 0600), if none exists; with --kek-credential it is created as an encrypted systemd \
                credential instead (systemd-creds, bound to this host: /etc/credstore.encrypted/portcullis-kek), \
                and kek_file is left empty.
                """)

        @Option(name: .shortAndLong, help: "Write the configuration to this file instead of standard output.")
        var output: String?
        @Flag(help: "Replace an existing --output file.")
        var force = false
        @Option(help: "The data directory.")
        var dataDir: String = "/var/lib/portcullis"
        @Option(help: "A prefix written by packaging/fips/build-fips-provider.sh; sets fips.openssl_config and fips.modules_dir.")
        var fipsPrefix: String?
        @Flag(help: "Write fips.enabled: no. Every start and report will say the appliance is not in FIPS mode.")
        var nonFips = false
        @Option(help: "keyring.kek_file (without this option: /etc/portcullis/kek, left as it is); created with a new random key if it does not exist.")
        var kekFile: String?
        @Flag(help: ArgumentHelp("Create a new random key-encryption key as an encrypted systemd credential, \(KeyEncryptionKeySource.encryptedCredentialPath) (root; bound to this host; where the service's LoadCredentialEncrypted=portcullis-kek and pcctl run as root find it), and leave kek_file empty."))
        var kekCredential = false
        @Option(help: "ssh_service.broker_socket: the root broker's socket, for a daemon that runs unprivileged (the package's: /run/portcullis-privd/privd.sock).")
        var brokerSocket: String = ""
        @Flag(help: "ssh_service.pam.enabled: sessions through the host's PAM stack, service 'portcullis' (the package's /etc/pam.d/portcullis).")
        var pam = false

        func run() throws {
            var parameters = DefaultConfiguration.Parameters()
            parameters.dataDir = absolute(dataDir)
            if kekFile != nil && kekCredential {
                printError("--kek-file and --kek-credential are two places for the same key: give one")
                throw ExitCode.validationFailure
            }
            parameters.kekFile = kekCredential ? "" : absolute(kekFile ?? "/etc/portcullis/kek")
            parameters.fipsEnabled = !nonFips
            parameters.brokerSocket = brokerSocket
            parameters.pamEnabled = pam
            if let fipsPrefix { parameters.useFIPSPrefix(absolute(fipsPrefix)) }
            let text = DefaultConfiguration.render(parameters)
            _ = try ConfigurationLoader.parse(text, file: "generated configuration")   // never write something start would refuse

            // Refused before any key is made: a failed run leaves nothing behind.
            if let output, FileManager.default.fileExists(atPath: output) && !force {
                printError("\(output) exists; not replacing it (use --force)")
                throw ExitCode.failure
            }
            if kekFile != nil, !FileManager.default.fileExists(atPath: parameters.kekFile) {
                do {
                    try KeyEncryptionKeySource.generate(at: parameters.kekFile, using: CryptoContext(mode: .nonFIPS))
                    printError("created a new key-encryption key in \(parameters.kekFile) (mode 0600). Back it up: without it the data cannot be read.")
                } catch {
                    printError("\(error)")
                    throw ExitCode.failure
                }
            }
            if kekCredential {
                let path = KeyEncryptionKeySource.encryptedCredentialPath
                do {
                    try KeyEncryptionKeySource.generateCredential(at: path, using: CryptoContext(mode: .nonFIPS))
                    printError("created a new key-encryption key as the encrypted systemd credential \(path), bound to this host. "
                               + "Keep a copy of the key itself somewhere as safe as the data (systemd-creds decrypt --name=portcullis-kek \(path) - > FILE): "
                               + "the credential opens on this host only, and without the key the data cannot be read.")
                } catch {
                    printError("\(error)")
                    throw ExitCode.failure
                }
            }
            guard let output else {
                print(text, terminator: "")
                return
            }
            do {
                try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
                try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: output)
            } catch {
                printError("cannot write \(output): \(error.localizedDescription)")
                throw ExitCode.failure
            }
            printError("wrote \(output)")
        }

        private func absolute(_ path: String) -> String {
            path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        }
    }

    struct Version: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the version and the OpenSSL library in use.")

        func run() throws {
            print("portcullis \(PortcullisVersion.version)")
            if let crypto = try? CryptoContext(mode: .nonFIPS) { print("libcrypto: \(crypto.status.libraryVersion)") }
        }
    }
}
