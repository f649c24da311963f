import Audit
import Foundation
import Node
import TestSupport
import XCTest

/// The host's say over its accounts, PAM or not (issue 17): what sshd's allowed_user() refuses,
/// and `permit_root_login`.
final class NodeAccountTests: NodeTestCase {
    private func refusal(_ change: [String], undo: [String]) async throws -> String {
        try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice")
        try Programs.executeSuccessfully("/usr/sbin/usermod", change + [NodeFixture.login])
        defer { _ = try? Programs.execute("/usr/sbin/usermod", undo + [NodeFixture.login]) }
        let result = try await fixture.ssh(key: key, "echo ran")
        XCTAssertNotEqual(result.status, 0)
        XCTAssertFalse(result.stdout.contains("ran"), "no program ran")
        return result.stderr
    }

    func testALockedAccountGetsNoSession() async throws {
        let stderr = try await refusal(["--lock"], undo: ["--unlock"])
        XCTAssertTrue(stderr.contains("the account \(NodeFixture.login) is locked on this host"), stderr)
    }

    func testAnExpiredAccountGetsNoSession() async throws {
        // Day 0, as `chage -E 0` sets it (pam_unix and sshd read it as expired).
        let stderr = try await refusal(["--expiredate", "1970-01-01"], undo: ["--expiredate", ""])
        XCTAssertTrue(stderr.contains("the account \(NodeFixture.login) expired on this host"), stderr)
    }

    func testAMissingShellGetsNoSession() async throws {
        let stderr = try await refusal(["--shell", "/bin/no-such-shell"], undo: ["--shell", "/bin/bash"])
        XCTAssertTrue(stderr.contains("/bin/no-such-shell) does not exist"), stderr)
    }

    func testEtcNologinRefusesEveryoneButRootWithItsText() async throws {
        try await fixture.addUser("alice", logins: [NodeFixture.login, "root"])
        let key = try await fixture.certifiedKey("alice", principals: [NodeFixture.login, "root"])
        try "Down for maintenance until 06:00.\n".write(toFile: "/etc/nologin", atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: "/etc/nologin") }
        let refused = try await fixture.ssh(key: key, "echo ran")
        XCTAssertFalse(refused.stdout.contains("ran"))
        XCTAssertTrue(refused.stderr.contains("Down for maintenance until 06:00."), refused.stderr)
        let root = try await fixture.ssh(key: key, login: "root", "echo ran")
        XCTAssertEqual(root.stdout, "ran\n", root.stderr)
    }

    func testANodeThatDoesNotPermitRootRefusesItWhateverTheRoles() async throws {
        await fixture.close()
        fixture = try await NodeFixture { $0.permitRootLogin = false }
        try await fixture.addUser("alice", logins: ["root"])
        let key = try await fixture.certifiedKey("alice", principals: ["root"])
        let result = try await fixture.ssh(key: key, login: "root", "echo ran")
        XCTAssertNotEqual(result.status, 0)
        XCTAssertFalse(result.stdout.contains("ran"))
        let refused = try await fixture.event("auth") { ($0.fields["error"]?.stringValue ?? "").contains("permit_root_login") }
        XCTAssertNotNil(refused, "the refusal is audited with its reason")
    }
}
