import FIPSCrypto
import Foundation
import SSH
import TestSupport
import XCTest

/// The certificate codec against ssh-keygen: we read what it signs, and it reads what we sign.
final class SSHCertificateTests: XCTestCase {
    private var directory: URL!
    private var crypto: CryptoContext!

    override func setUp() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/ssh-keygen") else {
            try TestEnvironment.missing("ssh-keygen (Debian package openssh-client) is not installed")
        }
        directory = try TestEnvironment.temporaryDirectory("portcullis-cert")
        crypto = try TestEnvironment.fipsContext()
        try keygen(["-q", "-t", "ecdsa", "-b", "384", "-N", "", "-C", "ca", "-f", path("ca")])
        try keygen(["-q", "-t", "ecdsa", "-b", "384", "-N", "", "-C", "other-ca", "-f", path("other-ca")])
        try keygen(["-q", "-t", "ecdsa", "-b", "256", "-N", "", "-C", "alice", "-f", path("user")])
    }

    override func tearDown() async throws { if let directory { try? FileManager.default.removeItem(at: directory) } }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    @discardableResult
    private func keygen(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ssh-keygen")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, output)
        return output
    }

    private func publicKey(_ name: String) throws -> PublicKey {
        let fields = try String(contentsOfFile: path(name), encoding: .utf8).split(separator: " ")
        return try PublicKey(sshWire: XCTUnwrap(Base64.decode(String(fields[1]))), using: crypto)
    }

    /// Signs user.pub with `ssh-keygen -s ca` and returns the parsed certificate.
    private func sign(_ options: [String]) throws -> SSHCertificate {
        try? FileManager.default.removeItem(atPath: path("user-cert.pub"))
        try keygen(["-q", "-s", path("ca")] + options + [path("user.pub")])
        let fields = try String(contentsOfFile: path("user-cert.pub"), encoding: .utf8).split(separator: " ")
        return try SSHCertificate(wire: XCTUnwrap(Base64.decode(String(fields[1]))), using: crypto)
    }

    func testReadsSSHKeygenCertificatesAndValidatesThem() throws {
        let ca = try publicKey("ca.pub")
        let certificate = try sign(["-I", "alice@corp", "-n", "alice,root", "-V", "-5m:+1h", "-z", "42", "-O", "force-command=/usr/bin/id"])
        XCTAssertEqual(certificate.keyID, "alice@corp")
        XCTAssertEqual(certificate.principals, ["alice", "root"])
        XCTAssertEqual(certificate.serial, 42)
        XCTAssertEqual(certificate.kind, .user)
        XCTAssertEqual(certificate.criticalOptions, ["force-command": "/usr/bin/id"])
        XCTAssertEqual(Set(certificate.extensions.keys), ["permit-X11-forwarding", "permit-agent-forwarding", "permit-port-forwarding", "permit-pty", "permit-user-rc"])
        XCTAssertEqual(certificate.key.keyData, try publicKey("user.pub").keyData)
        XCTAssertEqual(certificate.signatureKey.keyData, ca.keyData)

        XCTAssertNoThrow(try certificate.validate(kind: .user, principal: "root", trustedAuthorities: [ca], understoodCriticalOptions: ["force-command"]))
        XCTAssertThrowsError(try certificate.validate(kind: .user, principal: "root", trustedAuthorities: [ca])) {
            XCTAssertEqual($0 as? SSHCertificate.ValidationError, .unsupportedCriticalOption("force-command"))
        }
        XCTAssertThrowsError(try certificate.validate(kind: .user, principal: "bob", trustedAuthorities: [ca], understoodCriticalOptions: ["force-command"])) {
            XCTAssertEqual($0 as? SSHCertificate.ValidationError, .principalNotListed("bob"))
        }
        XCTAssertThrowsError(try certificate.validate(kind: .host, principal: "alice", trustedAuthorities: [ca], understoodCriticalOptions: ["force-command"])) {
            XCTAssertEqual($0 as? SSHCertificate.ValidationError, .wrongKind(expected: .host))
        }
        XCTAssertThrowsError(try certificate.validate(kind: .user, principal: "alice", trustedAuthorities: [try publicKey("other-ca.pub")])) {
            XCTAssertEqual($0 as? SSHCertificate.ValidationError, .untrustedAuthority)
        }
        XCTAssertThrowsError(try certificate.validate(kind: .user, principal: "alice", trustedAuthorities: [ca], understoodCriticalOptions: ["force-command"],
                                                      now: Date().addingTimeInterval(7200))) {
            guard case SSHCertificate.ValidationError.expired = $0 else { return XCTFail("\($0)") }
        }
    }

    /// ssh-keygen without -n makes a certificate valid for any name; OpenSSH's sshd refuses a
    /// user certificate like that, and so do we.
    func testACertificateWithoutPrincipalsIsRefused() throws {
        let ca = try publicKey("ca.pub")
        let anyone = try sign(["-I", "anyone"])
        XCTAssertEqual(anyone.principals, [])
        XCTAssertThrowsError(try anyone.validate(kind: .user, principal: "root", trustedAuthorities: [ca])) {
            XCTAssertEqual($0 as? SSHCertificate.ValidationError, .noPrincipals)
        }
    }

    func testForeverExpiredAndFutureCertificates() throws {
        let ca = try publicKey("ca.pub")
        let forever = try sign(["-I", "forever", "-n", "alice"])
        XCTAssertEqual(forever.validBefore, SSHCertificate.forever)
        XCTAssertNoThrow(try forever.validate(kind: .user, principal: "alice", trustedAuthorities: [ca]), "no trap on 2^64-1")
        let expired = try sign(["-I", "old", "-n", "alice", "-V", "-2h:-1h"])
        XCTAssertThrowsError(try expired.validate(kind: .user, principal: "alice", trustedAuthorities: [ca])) {
            guard case SSHCertificate.ValidationError.expired = $0 else { return XCTFail("\($0)") }
        }
        let future = try sign(["-I", "later", "-n", "alice", "-V", "+1h:+2h"])
        XCTAssertThrowsError(try future.validate(kind: .user, principal: "alice", trustedAuthorities: [ca])) {
            guard case SSHCertificate.ValidationError.notYetValid = $0 else { return XCTFail("\($0)") }
        }
    }

    func testTamperedCertificateFailsItsSignatureOrParse() throws {
        let ca = try publicKey("ca.pub")
        let certificate = try sign(["-I", "alice", "-n", "alice", "-V", "+1h"])
        // Flip a byte in the key id (inside the signed part): the CA signature must fail.
        var wire = certificate.wire
        let index = try XCTUnwrap(wire.indices.first { wire[$0...].starts(with: Array("alice".utf8)) })
        wire[index] ^= 0x20
        let tampered = try SSHCertificate(wire: wire, using: crypto)
        XCTAssertEqual(tampered.keyID, "Alice")
        XCTAssertThrowsError(try tampered.validate(kind: .user, principal: "alice", trustedAuthorities: [ca])) {
            XCTAssertEqual($0 as? SSHCertificate.ValidationError, .badSignature)
        }
        for cut in [10, 60, wire.count - 5] {
            XCTAssertThrowsError(try SSHCertificate(wire: wire.prefix(cut), using: crypto), "truncated at \(cut)")
        }
    }

    /// What our CA signs, ssh-keygen reads with every field, and we read back and validate.
    func testSSHKeygenReadsCertificatesWeIssue() throws {
        let authority = try PrivateKey(generate: .ecdsaP384, using: crypto)
        let user = try publicKey("user.pub")
        let now = UInt64(Date().timeIntervalSince1970)
        let issued = try SSHCertificate.issue(for: user, kind: .user, keyID: "alice@portcullis", principals: ["alice", "deploy"], serial: 7,
                                              validAfter: now - 60, validBefore: now + 3600,
                                              extensions: ["permit-pty": "", "permit-port-forwarding": ""], signedBy: authority, using: crypto)
        try (issued.authorizedKeyLine(comment: "alice") + "\n").write(toFile: path("issued-cert.pub"), atomically: true, encoding: .utf8)
        let listing = try keygen(["-L", "-f", path("issued-cert.pub")])
        XCTAssertTrue(listing.contains("Type: ecdsa-sha2-nistp256-cert-v01@openssh.com user certificate"), listing)
        XCTAssertTrue(listing.contains("Key ID: \"alice@portcullis\""), listing)
        XCTAssertTrue(listing.contains("Serial: 7"), listing)
        XCTAssertTrue(listing.contains("alice\n") && listing.contains("deploy\n"), listing)
        XCTAssertTrue(listing.contains("permit-pty") && listing.contains("permit-port-forwarding"), listing)
        XCTAssertFalse(listing.contains("permit-agent-forwarding"), listing)
        XCTAssertTrue(listing.contains("Signing CA: ECDSA"), listing)
        let parsed = try SSHCertificate(wire: issued.wire, using: crypto)
        XCTAssertNoThrow(try parsed.validate(kind: .user, principal: "deploy", trustedAuthorities: [try authority.publicKey]))
    }
}
