import Audit
import Foundation
import TestSupport
import XCTest

/// Debian's OpenSSH `sftp` against the node: what it does with extended requests (its default
/// rename is posix-rename@openssh.com, `ln` is hardlink@openssh.com, `cp` is copy-data) is
/// audited with the paths it acted on.
final class SFTPAuditInteropTests: XCTestCase {
    private static let sftpServer = "/usr/lib/openssh/sftp-server"
    private var fixture: NodeFixture!

    override func setUp() async throws {
        try NodeFixture.requirements()
        for tool in ["/usr/bin/sftp", Self.sftpServer] where !FileManager.default.isExecutableFile(atPath: tool) {
            try TestEnvironment.missing("\(tool) (Debian packages openssh-client, openssh-sftp-server) is not installed")
        }
        fixture = try await NodeFixture()
    }

    override func tearDown() async throws { await fixture?.close() }
    override class func tearDown() { NodeFixture.removeLogin() }

    func testRenameLinkAndCopyAreAuditedWithTheirPaths() async throws {
        try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice")
        let options = try await fixture.sshOptions(key: key).map { $0 == "-p" ? "-P" : $0 }
        let home = String(cString: getpwnam(NodeFixture.login)!.pointee.pw_dir)
        let source = fixture.directory.appendingPathComponent("payload")
        try Data("audited\n".utf8).write(to: source)
        let batch = fixture.directory.appendingPathComponent("batch")
        try """
        put \(source.path) ext-a
        rename ext-a ext-b
        ln ext-b ext-c
        -ln ext-b ext-c
        cp ext-b ext-d
        rm ext-b
        rm ext-c
        rm ext-d

        """.write(to: batch, atomically: true, encoding: .utf8)
        let sftp = try NodeFixture.run("/usr/bin/sftp", options + ["-b", batch.path, "\(NodeFixture.login)@127.0.0.1"])
        XCTAssertEqual(sftp.status, 0, sftp.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(home)/ext-a"))

        let events = try await fixture.events("sftp", atLeast: 9)
        func line(_ event: AuditEvent) -> String {
            let fields = event.fields
            return [fields["code"]?.stringValue, fields["action"]?.stringValue, fields["path"]?.stringValue,
                    fields["target_path"]?.stringValue, fields["extension"]?.stringValue].map { $0 ?? "-" }.joined(separator: " ")
        }
        let lines = events.map(line)
        XCTAssertTrue(lines.contains("TS016I rename \(home)/ext-a \(home)/ext-b posix-rename@openssh.com"), "\(lines)")
        XCTAssertTrue(lines.contains("TS019I link \(home)/ext-b \(home)/ext-c hardlink@openssh.com"), "\(lines)")
        XCTAssertTrue(lines.contains("TSX00I extended \(home)/ext-b \(home)/ext-d copy-data"), "\(lines)")
        let refused = try XCTUnwrap(events.first { line($0).hasPrefix("TS019E link ") }, "the second ln fails (ext-c exists): \(lines)")
        XCTAssertEqual(refused.fields["target_path"]?.stringValue, "\(home)/ext-c")
        XCTAssertNotNil(refused.fields["error"]?.stringValue)
        XCTAssertTrue(events.allSatisfy { $0.fields["user"]?.stringValue == "alice" && $0.fields["sid"] != nil })
        let gaps = try await fixture.events("sftp.audit_gap", atLeast: 0, timeout: 0)
        XCTAssertTrue(gaps.isEmpty, "\(gaps)")
    }
}
