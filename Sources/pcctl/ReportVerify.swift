import ArgumentParser
import Audit
import CommandSupport
import Compliance
import FIPSCrypto
import Foundation
import PrintableText

extension Pcctl.Report {
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an evidence bundle (--bundle) with the audit checkpoint key alone, naming any file altered, missing or added.",
            discussion: """
                The key is the appliance's audit checkpoint public key, obtained from the appliance out of band \
                ('pcctl audit key' there), never the copy inside the bundle. The manifest's signature can also be \
                checked with OpenSSL alone:
                  ssh-keygen -e -m PKCS8 -f KEY-FILE > key.pem
                  openssl dgst -sha384 -verify key.pem -signature DIR/manifest.sig DIR/manifest.json
                Exit status 0: intact. 65: something was altered, removed or added (each is named), or the bundle \
                cannot be read. 1: the key file cannot be read.
                """)
        @OptionGroup var options: ConfigOption
        @Argument(help: "The bundle directory.") var directory: String
        @Option(help: "A file holding the audit checkpoint public key (what 'pcctl audit key' prints).") var key: String

        func run() async throws {
            let crypto: CryptoContext, publicKey: PublicKey
            do {
                // On the appliance, its own crypto mode; on an auditor's machine (no configuration), OpenSSL's default provider.
                let mode = FileManager.default.fileExists(atPath: options.config) ? try options.load().fips.cryptoMode : .nonFIPS
                crypto = try CryptoContext(mode: mode)
                guard let line = try? String(contentsOfFile: key, encoding: .utf8) else { throw ValidationError("cannot read the key file \(key)") }
                publicKey = try PublicKey(authorizedKeyLine: line.trimmingCharacters(in: .whitespacesAndNewlines), using: crypto)
            } catch let exit as ExitCode {
                throw exit
            } catch {
                printError("\(error)")
                throw ExitCode.failure
            }
            let fingerprint = try publicKey.fingerprint()
            let keyPath = URL(fileURLWithPath: key).resolvingSymlinksInPath().path, bundlePath = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path
            if keyPath.hasPrefix(bundlePath + "/") {
                printError("warning: the key comes from the bundle itself, which proves nothing about who made it: compare \(fingerprint)"
                           + " with 'pcctl audit key' on the appliance")
            }
            let result: (manifest: EvidenceBundle.Manifest?, problems: [EvidenceBundleError])
            do { result = try EvidenceBundle.verify(directory: directory, publicKey: publicKey, crypto: crypto) } catch {
                printError("evidence bundle \(directory) cannot be checked: \(error)")
                throw ExitCode(65)
            }
            guard result.problems.isEmpty, let manifest = result.manifest else {
                printError("evidence bundle \(directory) does NOT verify under \(fingerprint):")
                for problem in result.problems { printError("  \(problem)") }
                throw ExitCode(65)   // EX_DATAERR
            }
            // The bundle's own words (signed, but possibly by the key it came with): shown, never acted on.
            print("evidence bundle intact: \(PrintableText.replaced(manifest.report)) report, \(AuditTime.format(manifest.window.from)) to "
                  + "\(AuditTime.format(manifest.window.to)), \(manifest.files.count) files, signed \(PrintableText.replaced(manifest.created)) by \(fingerprint)")
        }
    }
}
