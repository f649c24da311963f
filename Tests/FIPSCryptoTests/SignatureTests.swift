import FIPSCrypto
import Foundation
import TestSupport
import XCTest

final class SignatureTests: XCTestCase {
    func testECDSASignVerifyInBothEncodings() throws {
        for crypto in try TestEnvironment.allModes() {
            for algorithm in [SignatureAlgorithm.ecdsaP256, .ecdsaP384] {
                let key = try PrivateKey(generate: algorithm, using: crypto)
                let publicKey = try key.publicKey
                let message = Array("certificate to sign".utf8)

                let der = try key.signature(for: message)
                XCTAssertEqual(der.first, 0x30, "DER SEQUENCE")
                XCTAssertTrue(publicKey.isValidSignature(der, for: message))
                XCTAssertFalse(publicKey.isValidSignature(der, for: message + [0]))

                let blob = try key.sshSignature(for: message)
                XCTAssertTrue(publicKey.isValidSSHSignature(blob, for: message))
                XCTAssertFalse(publicKey.isValidSSHSignature(blob, for: Array("other".utf8)))
                var broken = blob
                broken[broken.count - 3] ^= 0x40
                XCTAssertFalse(publicKey.isValidSSHSignature(broken, for: message))
                XCTAssertFalse(publicKey.isValidSSHSignature(Array(blob.prefix(20)), for: message), "truncated blob")

                let other = try PrivateKey(generate: algorithm, using: crypto).publicKey
                XCTAssertFalse(other.isValidSSHSignature(blob, for: message))
            }
        }
    }

    func testPublicKeyWireRoundTripAndBadPoints() throws {
        let crypto = try TestEnvironment.fipsContext()
        let key = try PrivateKey(generate: .ecdsaP256, using: crypto).publicKey
        let parsed = try PublicKey(sshWire: key.sshWire, using: crypto)
        XCTAssertEqual(parsed.keyData, key.keyData)
        var offCurve = key.sshWire
        offCurve[offCurve.count - 1] ^= 0x01
        XCTAssertThrowsError(try PublicKey(sshWire: offCurve, using: crypto))
        XCTAssertThrowsError(try PublicKey(sshWire: Array(key.sshWire.prefix(30)), using: crypto))
        XCTAssertThrowsError(try PublicKey(sshWire: [0, 0, 0, 255], using: crypto))
    }

    func testPrivateKeyPKCS8RoundTrip() throws {
        let crypto = try TestEnvironment.fipsContext()
        let key = try PrivateKey(generate: .ecdsaP384, using: crypto)
        let der = try key.pkcs8DER()
        let restored = try der.withUnsafeBytes { try PrivateKey(pkcs8DER: Array($0), using: crypto) }
        XCTAssertEqual(restored.algorithm, .ecdsaP384)
        XCTAssertEqual(try restored.publicKey.keyData, try key.publicKey.keyData)
        XCTAssertThrowsError(try PrivateKey(pkcs8DER: [0x30, 0x03, 0x02, 0x01, 0x00], using: crypto))
    }

    func testECDHAgreesBothWays() throws {
        for crypto in try TestEnvironment.allModes() {
            for algorithm in [KeyAgreementAlgorithm.ecdhP256, .ecdhP384] {
                let a = try KeyAgreementKey(generate: algorithm, using: crypto)
                let b = try KeyAgreementKey(generate: algorithm, using: crypto)
                XCTAssertTrue(try a.sharedSecret(with: b.publicKey).isEqual(to: b.sharedSecret(with: a.publicKey)))
                var bad = b.publicKey
                bad[bad.count - 1] ^= 1
                XCTAssertThrowsError(try a.sharedSecret(with: bad), "a point off the curve is refused")
            }
        }
    }

    /// Interop with OpenSSH: our authorized_keys line is read by `ssh-keygen`, whose fingerprint
    /// must equal ours, and a signature we make in SSHSIG form verifies with `ssh-keygen -Y verify`.
    func testOpenSSHReadsOurKeysAndVerifiesOurSignatures() throws {
        guard let sshKeygen = ["/usr/bin/ssh-keygen", "/bin/ssh-keygen"].first(where: FileManager.default.isExecutableFile) else {
            try TestEnvironment.missing("ssh-keygen (Debian package openssh-client) is not installed")
        }
        let crypto = try TestEnvironment.fipsContext()
        let dir = try TestEnvironment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for algorithm in [SignatureAlgorithm.ecdsaP256, .ecdsaP384] {
            let key = try PrivateKey(generate: algorithm, using: crypto)
            let publicKey = try key.publicKey
            let pubFile = dir.appendingPathComponent("key.pub")
            try (publicKey.authorizedKeyLine(comment: "alice@portcullis") + "\n").write(to: pubFile, atomically: true, encoding: .utf8)
            let fingerprint = try run(sshKeygen, ["-l", "-E", "sha256", "-f", pubFile.path])
            XCTAssertTrue(fingerprint.contains(try publicKey.fingerprint()), "ssh-keygen: \(fingerprint)")

            // SSHSIG (OpenSSH PROTOCOL.sshsig): the signature is over a fixed preamble and H(message).
            let message = Array("evidence bundle".utf8)
            let namespace = "file"
            var signed = Array("SSHSIG".utf8)
            signed += wireString(Array(namespace.utf8)) + wireString([]) + wireString(Array("sha512".utf8))
            signed += wireString(try crypto.digest(.sha512, message))
            var blob = Array("SSHSIG".utf8) + [0, 0, 0, 1]
            blob += wireString(publicKey.sshWire) + wireString(Array(namespace.utf8)) + wireString([])
            blob += wireString(Array("sha512".utf8)) + wireString(try key.sshSignature(for: signed))
            let armored = "-----BEGIN SSH SIGNATURE-----\n" + Base64.encode(blob) + "\n-----END SSH SIGNATURE-----\n"
            let sigFile = dir.appendingPathComponent("msg.sig")
            try armored.write(to: sigFile, atomically: true, encoding: .utf8)
            let allowed = dir.appendingPathComponent("allowed_signers")
            try ("alice " + publicKey.authorizedKeyLine() + "\n").write(to: allowed, atomically: true, encoding: .utf8)
            let msgFile = dir.appendingPathComponent("msg")
            try Data(message).write(to: msgFile)
            let verified = try run(sshKeygen, ["-Y", "verify", "-f", allowed.path, "-I", "alice", "-n", namespace, "-s", sigFile.path],
                                   stdin: msgFile)
            XCTAssertTrue(verified.contains("Good \"file\" signature for alice"), verified)
            let tampered = dir.appendingPathComponent("tampered")
            try Data(message + [0x21]).write(to: tampered)
            XCTAssertThrowsError(try run(sshKeygen, ["-Y", "verify", "-f", allowed.path, "-I", "alice", "-n", namespace, "-s", sigFile.path],
                                         stdin: tampered))
        }
    }

    private func wireString(_ bytes: [UInt8]) -> [UInt8] {
        let n = UInt32(bytes.count)
        return [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] + bytes
    }

    private func run(_ executable: String, _ arguments: [String], stdin: URL? = nil) throws -> String {
        try Programs.executeSuccessfully(executable, arguments, stdin: stdin)
    }
}
