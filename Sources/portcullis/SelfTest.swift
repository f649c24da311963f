import Appliance
import ArgumentParser
import CommandSupport
import Compliance
import FIPSCrypto
import Foundation
import OpenSSLTLS
import PortcullisVersion
import Storage

extension Portcullis {
    struct SelfTest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "selftest",
            abstract: "Check the configuration, the FIPS provider and the key-encryption key.",
            discussion: """
                Loads the configured provider (in FIPS mode its integrity check and known-answer tests \
                run on load), runs its complete self-test again, checks that non-approved algorithms \
                are refused, completes a TLS handshake in the provider (the HTTPS API's TLS), reads the \
                KEK and, when the data directory exists, opens its keyring. \
                Exit status 0 when every check passes, 1 otherwise, 78 for a configuration error.
                """)

        @OptionGroup var options: ConfigOption
        @Flag(help: "Print the result as JSON.")
        var json = false

        struct Check: Codable {
            var name: String
            var passed: Bool
            var detail: String
        }

        struct Report: Codable {
            var version: String
            var config: String
            var fips: FIPSStatus?
            var checks: [Check]
            var boundaries: [CryptoBoundary]
            var passed: Bool
        }

        func run() async throws {
            let configuration = try options.load()
            let unlocked = Result { try ApplianceStorage.unlockAsRoot(configuration) }
            try assumeDataDirectoryOwner(configuration)
            var checks = [Check(name: "configuration", passed: true, detail: "\(options.config) is valid")]
            var status: FIPSStatus?
            var boundaries: [CryptoBoundary] = []
            do {
                let crypto = try CryptoContext(mode: configuration.fips.cryptoMode)
                status = crypto.status
                let loaded = crypto.status
                checks.append(Check(name: "crypto provider", passed: true,
                                    detail: "\(loaded.providerName) \(loaded.providerVersion) (build \(loaded.providerBuildInfo)) active; libcrypto \(loaded.libraryVersion)"))
                if loaded.mode == .fips {
                    checks.append(Check(name: "self-test on load", passed: loaded.selfTestPassed,
                                        detail: "\(loaded.selfTestsPassed) integrity and known-answer tests passed, \(loaded.selfTestsFailed) failed"))
                    do {
                        try crypto.runSelfTest()
                        checks.append(Check(name: "self-test on demand", passed: true, detail: "all provider self-tests passed again"))
                    } catch {
                        checks.append(Check(name: "self-test on demand", passed: false, detail: "\(error)"))
                    }
                    checks.append(approvedOnly(crypto))
                } else {
                    checks.append(Check(name: "FIPS mode", passed: true,
                                        detail: "OFF (fips.enabled: no): cryptography is not restricted to FIPS 140-approved algorithms"))
                }
                checks.append(tlsCheck(crypto))
                checks.append(await keyCheck(configuration, crypto, unlocked))
                boundaries = CryptoBoundary.table(for: crypto.status)
            } catch {
                checks.append(Check(name: "crypto provider", passed: false, detail: "\(error)"))
            }
            let report = Report(version: PortcullisVersion.version, config: options.config, fips: status, checks: checks,
                                boundaries: boundaries, passed: checks.allSatisfy(\.passed))
            json ? printJSON(report) : printText(report)
            if !report.passed { throw ExitCode.failure }
        }

        /// In FIPS mode each of these must be refused, by us or by the provider.
        private func approvedOnly(_ crypto: CryptoContext) -> Check {
            let key = SymmetricKey(bytes: [UInt8](repeating: 0, count: 32))
            let attempts: [(String, () throws -> Void)] = [
                ("MD5", { _ = try crypto.digest(.md5, [0]) }),
                ("Ed25519", { _ = try PrivateKey(generate: .ed25519, using: crypto) }),
                ("X25519", { _ = try KeyAgreementKey(generate: .x25519, using: crypto) }),
                ("ChaCha20-Poly1305", { _ = try crypto.seal([0], key: key, nonce: [UInt8](repeating: 0, count: 12), associatedData: [], algorithm: .chacha20Poly1305) }),
            ]
            let served = attempts.filter { (try? $0.1()) != nil }.map(\.0)
            return served.isEmpty
                ? Check(name: "approved algorithms only", passed: true, detail: "refused: \(attempts.map(\.0).joined(separator: ", "))")
                : Check(name: "approved algorithms only", passed: false, detail: "served although not approved: \(served.joined(separator: ", "))")
        }

        /// A TLS handshake in the library context, in memory: the HTTPS API would serve it.
        private func tlsCheck(_ crypto: CryptoContext) -> Check {
            do {
                let result = try TLSSelfTest.run(crypto: crypto)
                return Check(name: "TLS in the provider", passed: true,
                             detail: "loopback handshake: \(result.version) \(result.cipher) over \(result.group) (the HTTPS API's TLS runs here)")
            } catch {
                return Check(name: "TLS in the provider", passed: false, detail: "\(error)")
            }
        }

        private func keyCheck(_ configuration: Configuration, _ crypto: CryptoContext,
                              _ unlocked: Result<ApplianceStorage.UnlockedKEK?, any Error>) async -> Check {
            do {
                let kek = try ApplianceStorage.kek(configuration, unlocked: try unlocked.get())
                let source = kek.source
                guard FileManager.default.fileExists(atPath: configuration.storagePath) else {
                    return Check(name: "key-encryption key", passed: true, detail: "\(source) is usable; no data directory yet")
                }
                let storage = try await ApplianceStorage.open(configuration, crypto: crypto, unlocked: kek)
                let keys = storage.keyring.dataKeys
                await storage.close()
                return Check(name: "key-encryption key", passed: true,
                             detail: "\(source) opens the keyring: \(keys.count) data key(s), active \(keys.first(where: \.active)?.id ?? "?")")
            } catch {
                return Check(name: "key-encryption key", passed: false, detail: "\(error)")
            }
        }

        private func printText(_ report: Report) {
            print("Portcullis \(report.version) self-test (\(report.config))")
            if let fips = report.fips { print("mode: \(fips.summary)") }
            for check in report.checks {
                print("  [\(check.passed ? "PASS" : "FAIL")] \(check.name): \(check.detail)")
            }
            if !report.boundaries.isEmpty {
                print("crypto boundaries:")
                for b in report.boundaries {
                    print("  - \(b.name): \(b.algorithms) — \(b.module)\(b.fipsProvider ? " (FIPS provider)" : " (NOT the FIPS provider)")")
                }
            }
            print(report.passed ? "RESULT: PASS" : "RESULT: FAIL")
        }

        private func printJSON(_ report: Report) {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            if let data = try? encoder.encode(report) { print(String(decoding: data, as: UTF8.self)) }
        }
    }
}
