import Audit
import Foundation
import Node
import TestSupport
import XCTest

/// Sessions through the host's real PAM stack (issue 17): a test service of pam_exec (recording
/// what each stage sees), pam_access, pam_env and pam_limits, opened by the launcher.
final class NodePAMTests: XCTestCase {
    private var fixture: NodeFixture!
    private var directory: URL!
    private let service = "portcullis-test-\(UUID().uuidString.prefix(8).lowercased())"
    private var record: URL { directory.appendingPathComponent("pam.log") }
    private var access: URL { directory.appendingPathComponent("access.conf") }

    override func setUp() async throws {
        try NodeFixture.requirements()
        guard FileManager.default.fileExists(atPath: "/usr/lib/x86_64-linux-gnu/security/pam_exec.so")
                || FileManager.default.fileExists(atPath: "/lib/x86_64-linux-gnu/security/pam_exec.so") else {
            try TestEnvironment.missing("pam_exec (Debian package libpam-modules) is not installed")
        }
        directory = try TestEnvironment.temporaryDirectory("portcullis-pam")
        chmod(directory.path, 0o755)
        let script = directory.appendingPathComponent("record.sh")
        try """
            #!/bin/sh
            { echo "stage=$PAM_TYPE tty=$PAM_TTY rhost=$PAM_RHOST ruser=$PAM_RUSER user=$PAM_USER"; env | grep '^PORTCULLIS_' | sort; } >> \(record.path)
            """.write(to: script, atomically: true, encoding: .utf8)
        chmod(script.path, 0o755)
        try "+:ALL:ALL\n".write(to: access, atomically: true, encoding: .utf8)
        // pam_env may set a locale or a variable of the site's, never the account's identity or the loader's.
        try "FROM_PAM_ENV=from-the-env-file\nLD_PRELOAD=/tmp/nothing.so\nHOME=/nowhere\n".write(to: directory.appendingPathComponent("environment"), atomically: true, encoding: .utf8)
        try "\(NodeFixture.login) soft nofile 777\n\(NodeFixture.login) hard nofile 4096\n"
            .write(to: directory.appendingPathComponent("limits.conf"), atomically: true, encoding: .utf8)
        try """
            account required pam_exec.so \(script.path)
            account required pam_access.so accessfile=\(access.path)
            session required pam_exec.so \(script.path)
            session required pam_env.so readenv=1 envfile=\(directory.appendingPathComponent("environment").path) conffile=/dev/null user_readenv=0
            session required pam_limits.so conf=\(directory.appendingPathComponent("limits.conf").path)

            """.write(toFile: "/etc/pam.d/\(service)", atomically: true, encoding: .utf8)
        let service = service
        fixture = try await NodeFixture { $0.pam = NodeSettings.PAMSettings(serviceName: service, environment: ["ORG_UNIT": "blue"]) }
    }

    override func tearDown() async throws {
        await fixture?.close()
        try? FileManager.default.removeItem(atPath: "/etc/pam.d/\(service)")
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    override class func tearDown() { NodeFixture.removeLogin() }

    private func recorded(until stage: String) throws -> String {
        let deadline = Date().addingTimeInterval(10)
        while true {
            let text = (try? String(contentsOf: record, encoding: .utf8)) ?? ""
            if text.contains("stage=\(stage)") || Date() > deadline { return text }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    func testAnExecSessionGoesThroughTheAccountAndSessionStacksInOrder() async throws {
        try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice")
        let result = try await fixture.ssh(key: key, "echo $FROM_PAM_ENV $ORG_UNIT; ulimit -n; echo \"[$LD_PRELOAD]\" $HOME")
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "from-the-env-file blue", "pam_env's and the configuration's variables reach the program")
        XCTAssertEqual(lines.dropFirst().first, "777", "pam_limits of the service applies")
        XCTAssertEqual(lines.dropFirst(2).first, "[] /home/\(NodeFixture.login)", "PAM cannot set LD_PRELOAD or HOME")

        let text = try recorded(until: "close_session")
        let stages = text.split(separator: "\n").filter { $0.hasPrefix("stage=") }.map { $0.split(separator: " ")[0] }
        XCTAssertEqual(stages, ["stage=account", "stage=open_session", "stage=close_session"], text)
        XCTAssertTrue(text.contains("stage=account tty=ssh rhost=127.0.0.1 ruser=alice user=\(NodeFixture.login)"), text)
        let starts = try await fixture.events("session.start")
        let start = try XCTUnwrap(starts.first)
        for expected in ["PORTCULLIS_USER=alice", "PORTCULLIS_LOGIN=\(NodeFixture.login)", "PORTCULLIS_ROLES=role-alice",
                         "PORTCULLIS_SESSION_ID=\(start.sessionID ?? "?")"] {
            XCTAssertTrue(text.contains(expected), "\(expected) in \(text)")
        }
    }

    func testAnInteractiveSessionNamesItsTerminal() async throws {
        try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice")
        let result = try await fixture.ssh(key: key, nil, options: ["-tt"], input: Data("exit\n".utf8))
        XCTAssertEqual(result.status, 0, result.stderr)
        let text = try recorded(until: "close_session")
        XCTAssertTrue(text.contains("stage=open_session tty=/dev/pts/"), text)
    }

    func testTheHostsAccountPolicyRefusesTheSessionWithItsReason() async throws {
        try "-:\(NodeFixture.login):ALL\n".write(to: access, atomically: true, encoding: .utf8)
        try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice")
        let result = try await fixture.ssh(key: key, "echo ran")
        XCTAssertNotEqual(result.status, 0)
        XCTAssertFalse(result.stdout.contains("ran"), "no program ran")
        XCTAssertTrue(result.stderr.contains("access denied by the host's account policy (PAM \(service))"), result.stderr)
        let rejected = try await fixture.event("session.rejected") { ($0.fields["reason"]?.stringValue ?? "").contains("account policy") }
        XCTAssertNotNil(rejected, "the refusal is audited with PAM's reason")
        XCTAssertFalse(try recorded(until: "open_session").contains("stage=open_session"), "no session was opened")
    }

    func testTheShippedServiceFileWorksWithPamtester() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/pamtester") else {
            try TestEnvironment.missing("pamtester (Debian package pamtester) is not installed")
        }
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("packaging/pam.d/portcullis")
        let name = "\(service)-shipped"
        try FileManager.default.copyItem(atPath: shipped.path, toPath: "/etc/pam.d/\(name)")
        defer { try? FileManager.default.removeItem(atPath: "/etc/pam.d/\(name)") }
        let result = try Programs.execute("/usr/bin/pamtester", [name, NodeFixture.login, "acct_mgmt", "setcred", "open_session", "close_session"])
        XCTAssertEqual(result.status, 0, result.output)
    }
}
