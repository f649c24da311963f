import FIPSCrypto
import Foundation
@testable import Identity
import SSH
import TestSupport
import XCTest

/// Our certificates against Debian's OpenSSH: sshd trusting `pcctl auth export --type user`
/// lines, ssh trusting our `@cert-authority` known_hosts line.
final class OpenSSHTrustTests: XCTestCase {
    private var fixture: IdentityFixture!
    private var servers: [OpenSSHServer] = []

    override func setUp() async throws { fixture = try await IdentityFixture() }
    override func tearDown() async throws {
        servers.forEach { $0.stop() }
        await fixture?.close()
    }

    /// sshd with TrustedUserCAKeys = the user CA's export now, and a host certificate from our host CA.
    private func startSSHD(_ name: String) async throws -> OpenSSHServer {
        let directory = fixture.directory.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let host = try fixture.sshKeygenKey("\(name)-host")
        let hostKey = try IdentityService.parsePublicKey(host.publicLine, using: fixture.crypto)
        let hostCertificate = try await fixture.service.hostCA.sign(hostKey, keyID: "sshd-\(name)", principals: ["localhost", "127.0.0.1"], validFor: .seconds(3600))
        let trusted = CertificateAuthority.trustedUserCAKeysLines(try await fixture.service.userCA.trustedKeys(), clusterName: "test")
        let server = try OpenSSHServer(directory: directory, trustedUserCAKeyLine: trusted.joined(separator: "\n"),
                                       hostKey: (host.path, hostCertificate.authorizedKeyLine()))
        servers.append(server)
        return server
    }

    private func knownHostsFile() async throws -> String {
        let path = fixture.directory.appendingPathComponent("known_hosts").path
        let lines = CertificateAuthority.knownHostsLines(try await fixture.service.hostCA.trustedKeys(), patterns: ["*"])
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `ssh` as a user would run it after `pcsh login`: strict host checking against our CA only.
    private func ssh(_ server: OpenSSHServer, login: String, key: String, certificate: SSHCertificate) async throws -> (status: Int32, output: String) {
        let certificateFile = key + "-cert-\(certificate.serial).pub"
        try (certificate.authorizedKeyLine() + "\n").write(toFile: certificateFile, atomically: true, encoding: .utf8)
        return try Programs.execute("/usr/bin/ssh", [
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=\(try await knownHostsFile())",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-i", key, "-o", "CertificateFile=\(certificateFile)",
            "-p", "\(server.port)", "\(login)@127.0.0.1", "echo logged-in-as-$(id -un)",
        ])
    }

    private func loginCertificate(_ totp: TOTP, key: String, step offset: Int64) async throws -> SSHCertificate {
        let now = Date()
        return try await fixture.service.login(LoginRequest(user: "alice", password: "correct horse battery",
                                                            totpCode: try totp.code(step: TOTP.step(at: now) + offset), publicKey: key), now: now).certificate
    }

    func testStockSSHDAcceptsOurCertificateOnlyForAllowedLoginsWhileValidAndTrusted() async throws {
        try await fixture.addRole("access", logins: ["root"])
        let totp = try await fixture.enrolledUser("alice", roles: ["access"])
        let key = try fixture.sshKeygenKey("alice")
        let certificate = try await loginCertificate(totp, key: key.publicLine, step: 0)
        let sshd = try await startSSHD("first")

        let allowed = try await ssh(sshd, login: "root", key: key.path, certificate: certificate)
        XCTAssertEqual(allowed.status, 0, allowed.output + sshd.log)
        XCTAssertTrue(allowed.output.contains("logged-in-as-root"), allowed.output)
        XCTAssertTrue(sshd.log.contains("ID alice (serial \(certificate.serial))"), sshd.log)

        let otherLogin = try await ssh(sshd, login: "nobody", key: key.path, certificate: certificate)
        XCTAssertEqual(otherLogin.status, 255, "a login the role does not allow: \(otherLogin.output)")
        XCTAssertTrue(otherLogin.output.contains("Permission denied"), otherLogin.output)
        XCTAssertTrue(sshd.log.contains("Certificate invalid: name is not a listed principal"), sshd.log)

        let expired = try await fixture.service.userCA.sign(try IdentityService.parsePublicKey(key.publicLine, using: fixture.crypto), keyID: "alice",
                                                            principals: ["root"], validFor: .seconds(600), now: Date().addingTimeInterval(-3600))
        let late = try await ssh(sshd, login: "root", key: key.path, certificate: expired)
        XCTAssertEqual(late.status, 255, "an expired certificate: \(late.output)")
        XCTAssertTrue(sshd.log.contains("Certificate invalid: expired"), "refused for its expiry, not for something else: \(sshd.log)")
    }

    func testRotationKeepsOldCertificatesUntilItCompletes() async throws {
        try await fixture.addRole("access", logins: ["root"])
        let totp = try await fixture.enrolledUser("alice", roles: ["access"])
        let key = try fixture.sshKeygenKey("alice")
        let old = try await loginCertificate(totp, key: key.publicLine, step: 0)

        let before = try await fixture.service.userCA.trustedKeys()
        let new = try await fixture.service.userCA.rotate(overlap: .seconds(3600))
        let overlapping = try await fixture.service.userCA.trustedKeys()
        XCTAssertEqual(overlapping.map(\.id), [before[0].id, new.id])
        XCTAssertEqual(overlapping.map(\.active), [false, true])
        let fresh = try await loginCertificate(totp, key: key.publicLine, step: 1)
        XCTAssertTrue(fresh.signatureKey.sshWire == new.publicKey.sshWire, "logins are signed by the new key at once")

        let during = try await startSSHD("overlap")
        for certificate in [old, fresh] {
            let result = try await ssh(during, login: "root", key: key.path, certificate: certificate)
            XCTAssertEqual(result.status, 0, "during the overlap both CAs are trusted: \(result.output)")
        }
        during.stop()

        let dropped = try await fixture.service.userCA.completeRotation()
        XCTAssertEqual(dropped, [before[0].id])
        let after = try await startSSHD("after")
        let refused = try await ssh(after, login: "root", key: key.path, certificate: old)
        XCTAssertEqual(refused.status, 255, "after the rotation the old CA's certificates are refused: \(refused.output)")
        // The same login and key with the new CA's certificate gets in: only the CA differs.
        let accepted = try await ssh(after, login: "root", key: key.path, certificate: fresh)
        XCTAssertEqual(accepted.status, 0, accepted.output)
    }

    func testSSHRefusesAHostWhoseCertificateIsNotFromOurHostCA() async throws {
        try await fixture.addRole("access", logins: ["root"])
        let totp = try await fixture.enrolledUser("alice", roles: ["access"])
        let key = try fixture.sshKeygenKey("alice")
        let certificate = try await loginCertificate(totp, key: key.publicLine, step: 0)
        // sshd certified by a host CA of its own (ssh-keygen's), which our known_hosts line does not name.
        let directory = fixture.directory.appendingPathComponent("foreign")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let foreign = try OpenSSHServer(directory: directory, trustedUserCAKeyLine: CertificateAuthority.trustedUserCAKeysLines(
            try await fixture.service.userCA.trustedKeys(), clusterName: "test").joined(separator: "\n"))
        servers.append(foreign)
        let result = try await ssh(foreign, login: "root", key: key.path, certificate: certificate)
        XCTAssertEqual(result.status, 255, result.output)
        XCTAssertTrue(result.output.contains("Host key verification failed"), result.output)
    }
}
