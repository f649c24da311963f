import AdminAPI
import Appliance
import ArgumentParser
import CommandSupport
import FIPSCrypto
import Foundation
import PortcullisVersion
import Storage

@main
struct Pcctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pcctl",
        abstract: "Administer a Portcullis appliance: run it on the appliance, as the user the daemon runs as.",
        version: PortcullisVersion.version,
        subcommands: [Users.self, Create.self, Get.self, Remove.self, Auth.self, Nodes.self, Sessions.self, LockCommand.self, Audit.self, Recordings.self, Keys.self, Report.self, Version.self]
    )

    struct Version: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the version.")
        func run() { print("pcctl \(PortcullisVersion.version)") }
    }
}

extension Pcctl {
    struct Keys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The data keys that seal stored data.",
            discussion: """
                Every value Portcullis stores is sealed with AES-256-GCM under a data key; data keys are \
                wrapped by the key-encryption key (systemd credential 'portcullis-kek' or keyring.kek_file). \
                Rotation adds a new data key and makes it active: new data is sealed with it, old data stays \
                readable under its own key, nothing is rewritten. The running daemon rotates, and records the \
                rotation (data_key.rotate) in the audit log.
                """,
            subcommands: [List.self, Rotate.self])
    }
}

extension Pcctl.Keys {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the data keys; the active one is marked.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await withStorage(options) { storage, _, _ in
                let formatter = ISO8601DateFormatter()
                var table = Table(columns: [.init("ID", width: 36), .init("CREATED", width: 22), .init("SEALS", width: 13), .init("ACTIVE")])
                for key in storage.keyring.dataKeys {
                    table.add([key.id, formatter.string(from: key.created), String(key.seals), key.active ? "yes" : ""])
                }
                print(table.render())
                let policy = Keyring.RotationPolicy()
                print("The active key is replaced automatically after \(policy.maximumAge.components.seconds / 86400) days or "
                      + "\(policy.maximumSeals) seals (AES-GCM with random nonces: at most 2^32 per key, SP 800-38D); seal counts "
                      + "are as the daemon last wrote them (every minute).")
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a new data key and make it the active one.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let answer = try await AdminClient(options).call(DataKeyRotationResult.self, .POST, "/v1/keys/rotate")
            print("rotated: new data key \(answer.active) is active (was \(answer.previous)); existing data stays readable")
        }
    }
}

/// Opens the appliance's storage as the daemon does, runs `body`, closes it.
func withStorage(_ options: ConfigOption, _ body: (ApplianceStorage, Configuration, CryptoContext) async throws -> Void) async throws {
    let configuration = try options.load()
    let unlocked: ApplianceStorage.UnlockedKEK?
    do { unlocked = try ApplianceStorage.unlockAsRoot(configuration) } catch {
        printError("\(error)")
        throw ExitCode.failure
    }
    try assumeDataDirectoryOwner(configuration)
    let storage: ApplianceStorage
    let crypto: CryptoContext
    do {
        crypto = try CryptoContext(mode: configuration.fips.cryptoMode)
        storage = try await ApplianceStorage.open(configuration, crypto: crypto, unlocked: unlocked)
    } catch {
        printError("\(error)")
        throw ExitCode.failure
    }
    do {
        try await body(storage, configuration, crypto)
    } catch let exit as ExitCode {
        await storage.close()
        throw exit
    } catch {
        await storage.close()
        printError("\(error)")
        throw ExitCode.failure
    }
    await storage.close()
}
