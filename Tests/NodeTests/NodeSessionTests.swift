import Audit
import Foundation
import Identity
import Node
import TestSupport
import XCTest

/// The node with Debian's OpenSSH client: commands, shells, file copy, who the session runs as
/// and where, and what it leaves as evidence.
final class NodeSessionTests: NodeTestCase {

    func testExecPrintsOutputAndExitStatusAndIsAnAuditedSession() async throws {
        try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice")
        let result = try await fixture.ssh(key: key, "echo hi; echo oops >&2; exit 3")
        XCTAssertEqual(result.status, 3, result.stderr)
        XCTAssertEqual(result.stdout, "hi\n")
        XCTAssertTrue(result.stderr.contains("oops"), result.stderr)

        let exec = try await fixture.events("exec")
        XCTAssertEqual(exec.count, 1)
        XCTAssertEqual(exec.first?.fields["command"]?.stringValue, "echo hi; echo oops >&2; exit 3")
        XCTAssertEqual(exec.first?.fields["exitCode"]?.stringValue, "3")
        XCTAssertEqual(exec.first?.fields["user"]?.stringValue, "alice")
        XCTAssertEqual(exec.first?.fields["login"]?.stringValue, NodeFixture.login)
        XCTAssertEqual(exec.first?.fields["server_id"]?.stringValue, "node-test")
        let sid = try XCTUnwrap(exec.first?.fields["sid"]?.stringValue)
        let start = try await fixture.events("session.start")
        XCTAssertEqual(start.first?.fields["sid"]?.stringValue, sid)
        XCTAssertEqual(start.first?.fields["code"]?.stringValue, "T2000I")
        let data = try await fixture.events("session.data")
        XCTAssertEqual(data.first?.fields["sid"]?.stringValue, sid)
        XCTAssertEqual(data.first?.fields["tx"], .integer(Int64("hi\n".utf8.count + "oops\n".utf8.count)))
        let end = try await fixture.events("session.end")
        XCTAssertEqual(end.first?.fields["sid"]?.stringValue, sid)
        XCTAssertEqual(end.first?.fields["interactive"], false)
        XCTAssertTrue(fixture.node.registry.list().isEmpty, "an ended session is not listed as live")
    }

    func testABinaryDownloadIsRecordedByteForByte() async throws {
        try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice")
        let file = fixture.directory.appendingPathComponent("random.bin")
        var generator = SystemRandomNumberGenerator()
        let sent = (0..<(8 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        try Data(sent).write(to: file)
        chmod(file.path, 0o644)
        let result = try await fixture.ssh(key: key, "cat \(file.path) | sha256sum")
        XCTAssertEqual(result.status, 0, result.stderr)
        let end = try await fixture.events("session.end")
        let sid = try XCTUnwrap(end.first?.sessionID)
        let text = try await fixture.recordings.export(sid, format: .text)
        XCTAssertEqual(text.count, result.stdout.utf8.count, "the recording has what the user received")
        // The download itself, recorded whole: 8 MiB of random bytes, byte for byte.
        let download = try await fixture.ssh(key: key, "cat \(file.path)")
        XCTAssertEqual(download.status, 0)
        let ends = try await fixture.events("session.end", atLeast: 2)
        let downloadSID = try XCTUnwrap(ends.first { $0.sessionID != sid }?.sessionID)
        let recorded = try await fixture.recordings.export(downloadSID, format: .text)
        XCTAssertEqual(recorded.count, sent.count)
        XCTAssertTrue(recorded == sent, "the text export equals the bytes sent")
    }

    func testAProgramKilledByASignalIsReportedAsExitSignal() async throws {
        try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice")
        let result = try await fixture.ssh(key: key, "echo before; kill -TERM $$; echo after")
        XCTAssertEqual(result.stdout, "before\n")
        XCTAssertEqual(result.status, 255, "OpenSSH exits 255 when the command was killed by a signal: \(result.stderr)")
        let exec = try await fixture.events("exec")
        XCTAssertEqual(exec.first?.fields["exitError"]?.stringValue, "signal TERM")
    }

    func testSessionRunsAsTheLoginInItsOwnCgroupWithAControllingTerminal() async throws {
        try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice")
        let account = try XCTUnwrap(getpwnam(NodeFixture.login)).pointee
        let result = try await fixture.ssh(key: key, "id -u; id -g; id -G; cat /proc/self/cgroup; tty; ps -o tty= -p $$; echo PATH=$PATH; echo UMASK=$(umask)",
                                           options: ["-tt"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.replacingOccurrences(of: "\r", with: "").split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, String(account.pw_uid), result.stdout)
        XCTAssertEqual(lines.dropFirst().first, String(account.pw_gid))
        let groups = Set(lines[2].split(separator: " ").map(String.init))
        XCTAssertTrue(groups.contains(String(getgrnam("users")!.pointee.gr_gid)), "supplementary groups are the login's: \(lines[2])")
        XCTAssertFalse(groups.contains("0"), "no group of root's is kept")
        let starts = try await fixture.events("session.start")
        let sid = try XCTUnwrap(starts.first?.fields["sid"]?.stringValue)
        XCTAssertTrue(lines.contains { $0.hasPrefix("0::") && $0.hasSuffix("/portcullis/\(sid)") }, "in the session's cgroup: \(lines)")
        XCTAssertTrue(lines.contains { $0.hasPrefix("/dev/pts/") }, "a terminal: \(lines)")
        XCTAssertTrue(lines.contains { $0.trimmingCharacters(in: .whitespaces).hasPrefix("pts/") }, "the shell's controlling terminal: \(lines)")
        XCTAssertTrue(lines.contains("PATH=/usr/local/bin:/usr/bin:/bin"), "a clean environment: \(lines)")
        XCTAssertTrue(lines.contains("UMASK=0022"), "a person's umask, not the daemon's 077: \(lines)")
        // The cgroup goes with the session.
        let path = try fixture.cgroupPath(sid)
        try await waitUntil { !FileManager.default.fileExists(atPath: path) }
    }

    /// As under sshd, the login owns its terminal: `mesg` (and `write`, `screen`) work.
    func testTheLoginOwnsItsTerminal() async throws {
        try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice")
        let result = try await fixture.ssh(key: key, "stat -L -c %U /proc/self/fd/0; mesg y && echo mesg-ok", options: ["-tt"])
        let lines = result.stdout.replacingOccurrences(of: "\r", with: "").split(separator: "\n").map(String.init)
        XCTAssertEqual(lines, [NodeFixture.login, "mesg-ok"], result.stderr)
        XCTAssertEqual(result.status, 0, result.stderr)
    }

    func testUnknownLoginIsAClearErrorAndNoSession() async throws {
        try await fixture.addUser("alice", logins: ["nosuchlogin42"])
        let key = try await fixture.certifiedKey("alice", principals: ["nosuchlogin42"])
        let result = try await fixture.ssh(key: key, login: "nosuchlogin42", "echo should-not-run")
        XCTAssertNotEqual(result.status, 0)
        XCTAssertFalse(result.stdout.contains("should-not-run"))
        XCTAssertTrue(result.stderr.contains("unknown login \"nosuchlogin42\""), result.stderr)
        let rejected = try await fixture.events("session.rejected")
        XCTAssertTrue(rejected.contains { $0.fields["reason"]?.stringValue?.contains("unknown login") == true }, "\(rejected)")
    }

    func testSCPAndSFTPRoundTripTenMegabytes() async throws {
        try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice")
        let source = fixture.directory.appendingPathComponent("payload")
        try Data((0..<(10 << 20)).map { _ in UInt8.random(in: 0...255) }).write(to: source)
        let options = try await fixture.sshOptions(key: key).map { $0 == "-p" ? "-P" : $0 }
        let home = String(cString: getpwnam(NodeFixture.login)!.pointee.pw_dir)

        let up = try NodeFixture.run("/usr/bin/scp", options + ["-q", source.path, "\(NodeFixture.login)@127.0.0.1:scp-copy"])
        XCTAssertEqual(up.status, 0, up.stderr)
        let back = fixture.directory.appendingPathComponent("scp-back")
        let down = try NodeFixture.run("/usr/bin/scp", options + ["-q", "\(NodeFixture.login)@127.0.0.1:scp-copy", back.path])
        XCTAssertEqual(down.status, 0, down.stderr)
        XCTAssertEqual(try Data(contentsOf: back), try Data(contentsOf: source))
        let stored = try FileManager.default.attributesOfItem(atPath: "\(home)/scp-copy")
        XCTAssertEqual(stored[.ownerAccountName] as? String, NodeFixture.login, "written as the login")

        let batch = fixture.directory.appendingPathComponent("batch")
        let sftpBack = fixture.directory.appendingPathComponent("sftp-back")
        try "put \(source.path) sftp-copy\nget sftp-copy \(sftpBack.path)\nrm sftp-copy\nrm scp-copy\n-rm no-such-file\n".write(to: batch, atomically: true, encoding: .utf8)
        let sftp = try NodeFixture.run("/usr/bin/sftp", options + ["-b", batch.path, "\(NodeFixture.login)@127.0.0.1"])
        XCTAssertEqual(sftp.status, 0, sftp.stderr)
        XCTAssertEqual(try Data(contentsOf: sftpBack), try Data(contentsOf: source))
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(home)/sftp-copy"))
        let subsystem = try await fixture.events("subsystem")
        XCTAssertEqual(subsystem.first?.fields["name"]?.stringValue, "sftp")

        // What the sftp session did to files, answered by the server: open (write, then read) and remove.
        let sftpEvents = try await fixture.events("sftp", atLeast: 4)
        let actions = sftpEvents.reversed().map { "\($0.fields["action"]?.stringValue ?? "?") \($0.fields["path"]?.stringValue ?? "?") \($0.fields["code"]?.stringValue ?? "?")" }
        XCTAssertTrue(actions.contains("open \(home)/sftp-copy TS001I"), "\(actions)")
        XCTAssertTrue(actions.contains("remove \(home)/sftp-copy TS011I"), "\(actions)")
        XCTAssertTrue(actions.contains("remove \(home)/scp-copy TS011I"), "\(actions)")
        let failed = try XCTUnwrap(sftpEvents.first { $0.fields["path"]?.stringValue == "\(home)/no-such-file" }, "\(actions)")
        XCTAssertEqual(failed.fields["code"]?.stringValue, "TS011E")
        XCTAssertEqual(failed.fields["error"]?.stringValue, "No such file")
        XCTAssertTrue(sftpEvents.allSatisfy { $0.fields["user"]?.stringValue == "alice" && $0.fields["sid"] != nil })
        let summaries = try await fixture.events("sftp_summary", atLeast: 1)
        let stats = summaries.compactMap { summary -> [AuditValue]? in
            if case .array(let list)? = summary.fields["file_transfer_stats"] { return list } else { return nil }
        }.flatMap { $0 }
        XCTAssertTrue(stats.contains(.object(["path": .string("\(home)/sftp-copy"), "bytes_read": .integer(10 << 20),
                                              "bytes_written": .integer(10 << 20)])), "\(stats)")
    }

    func testFileCopyIsRefusedWhenTheRoleForbidsIt() async throws {
        var options = RoleOptions()
        options.sshFileCopy = false
        try await fixture.addUser("alice", options: options)
        let key = try await fixture.certifiedKey("alice")
        let sshOptions = try await fixture.sshOptions(key: key).map { $0 == "-p" ? "-P" : $0 }
        let batch = fixture.directory.appendingPathComponent("batch")
        try "ls\n".write(to: batch, atomically: true, encoding: .utf8)
        let sftp = try NodeFixture.run("/usr/bin/sftp", sshOptions + ["-b", batch.path, "\(NodeFixture.login)@127.0.0.1"])
        XCTAssertNotEqual(sftp.status, 0)
        XCTAssertTrue(sftp.stderr.contains("file copying (scp, sftp) is not permitted for user \"alice\""), sftp.stderr)
        let scp = try NodeFixture.run("/usr/bin/scp", sshOptions + ["-O", batch.path, "\(NodeFixture.login)@127.0.0.1:copy"])
        XCTAssertNotEqual(scp.status, 0)
        XCTAssertTrue(scp.stderr.contains("file copying (scp, sftp) is not permitted for user \"alice\""), scp.stderr)
        let refused = try await fixture.events("exec", atLeast: 2)
        XCTAssertEqual(refused.filter { $0.fields["code"]?.stringValue == "T3002E" && $0.fields["exitError"]?.stringValue == "ssh_file_copy is off" }.count, 2)
        let shell = try await fixture.ssh(key: key, "echo still-allowed")
        XCTAssertEqual(shell.stdout, "still-allowed\n", "other sessions are not affected")
    }
}
