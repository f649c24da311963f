import FIPSCrypto
import Foundation
import TestSupport
import XCTest

final class FIPSModeTests: XCTestCase {
    func testFIPSStatusShowsActiveProviderAndPassingSelfTest() throws {
        let crypto = try TestEnvironment.fipsContext()
        let status = crypto.status
        XCTAssertEqual(status.mode, .fips)
        XCTAssertEqual(status.providerName, "OpenSSL FIPS Provider")
        XCTAssertTrue(status.providerVersion.hasPrefix("3."), status.providerVersion)
        XCTAssertTrue(status.selfTestPassed)
        XCTAssertEqual(status.selfTestsFailed, 0)
        XCTAssertNil(status.lastSelfTestFailure)
        // The count of known-answer tests run on load is asserted in a fresh process by
        // ProgramTests (`portcullis selftest`): fips.so reports events to the first context that
        // loaded it in a process, and this test process has loaded it many times.
        XCTAssertNoThrow(try crypto.runSelfTest())
    }

    func testNonFIPSModeSaysSo() throws {
        let status = try CryptoContext(mode: .nonFIPS).status
        XCTAssertEqual(status.mode, .nonFIPS)
        XCTAssertEqual(status.providerName, "OpenSSL Default Provider")
        XCTAssertTrue(status.summary.hasPrefix("NON-FIPS mode"), status.summary)
    }

    func testNonApprovedAlgorithmsAreRefusedInFIPSModeWithoutFallback() throws {
        let fips = try TestEnvironment.fipsContext()
        func assertRefused(_ name: String, _ body: () throws -> Void) {
            XCTAssertThrowsError(try body(), name) { error in
                guard case CryptoError.notApproved(let algorithm, _) = error else {
                    return XCTFail("\(name): expected notApproved, got \(error)")
                }
                XCTAssertTrue(algorithm.contains(name), "\(algorithm) names \(name)")
                XCTAssertTrue("\(error)".contains("FIPS mode"), "\(error)")
            }
        }
        assertRefused("MD5") { _ = try fips.digest(.md5, [1, 2, 3]) }
        assertRefused("MD5") { _ = try fips.hmac(.md5, key: [1], data: [2]) }
        assertRefused("Ed25519") { _ = try PrivateKey(generate: .ed25519, using: fips) }
        assertRefused("X25519") { _ = try KeyAgreementKey(generate: .x25519, using: fips) }
        assertRefused("ChaCha20") {
            _ = try fips.seal([1], key: SymmetricKey(bytes: [UInt8](repeating: 1, count: 32)), nonce: [UInt8](repeating: 0, count: 12),
                              associatedData: [], algorithm: .chacha20Poly1305)
        }
    }

    func testNonFIPSModeServesTheSameRequests() throws {
        let plain = try CryptoContext(mode: .nonFIPS)
        XCTAssertEqual(try plain.digest(.md5, Array("abc".utf8)).hex, "900150983cd24fb0d6963f7d28e17f72")
        let ed = try PrivateKey(generate: .ed25519, using: plain)
        let signature = try ed.signature(for: [1, 2, 3])
        XCTAssertTrue(try ed.publicKey.isValidSignature(signature, for: [1, 2, 3]))
        let a = try KeyAgreementKey(generate: .x25519, using: plain)
        let b = try KeyAgreementKey(generate: .x25519, using: plain)
        XCTAssertTrue(try a.sharedSecret(with: b.publicKey).isEqual(to: b.sharedSecret(with: a.publicKey)))
    }

    /// The provider really is the one doing the work: with the fips provider the process-wide
    /// default provider is not available to our context.
    func testFIPSContextHasNoDefaultProvider() throws {
        let fips = try TestEnvironment.fipsContext()
        XCTAssertFalse(fips.isProviderActive("default"))
        XCTAssertTrue(fips.isProviderActive("fips"))
        XCTAssertTrue(try CryptoContext(mode: .nonFIPS).isProviderActive("default"))
    }

    func testMissingProviderFailsWithTheReason() throws {
        let empty = try TestEnvironment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: empty) }
        let configuration = try TestEnvironment.fipsConfiguration()
        XCTAssertThrowsError(try CryptoContext(mode: .fips(FIPSProviderConfiguration(
            opensslConfig: configuration.opensslConfig, modulesDirectory: empty.path)))) { error in
            guard case CryptoError.providerUnavailable(let provider, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(provider, "fips")
            XCTAssertTrue(reason.contains("could not load the shared library") || reason.contains("fips.so"), reason)
        }
    }

    func testCorruptedModuleFailsItsIntegrityCheck() throws {
        let configuration = try TestEnvironment.fipsConfiguration()
        let copy = try TestEnvironment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: copy) }
        var module = try [UInt8](Data(contentsOf: URL(fileURLWithPath: configuration.modulesDirectory).appendingPathComponent("fips.so")))
        module[module.count / 2] ^= 0x01
        try Data(module).write(to: copy.appendingPathComponent("fips.so"))
        XCTAssertThrowsError(try CryptoContext(mode: .fips(FIPSProviderConfiguration(
            opensslConfig: configuration.opensslConfig, modulesDirectory: copy.path)))) { error in
            // The provider's own reason: its HMAC over fips.so does not match module-mac.
            XCTAssertTrue("\(error)".contains("Module_Integrity"), "\(error)")
        }
    }
}
