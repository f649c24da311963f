import Audit
import Foundation
import Identity
import LaunchProtocol
@testable import Node
import TestSupport
import XCTest

/// Just-in-time host users (issue 17), made by the real launcher with the host's own useradd,
/// groupadd, usermod, userdel and visudo, on this machine (root, as CI runs).
final class HostUserTests: XCTestCase {
    private var fixture: NodeFixture!
    /// Logins and groups a test may have made, removed after it.
    private var logins: [String] = []
    private var groups: [String] = []

    override func setUp() async throws {
        try NodeFixture.requirements()
        for tool in ["/usr/sbin/useradd", "/usr/sbin/visudo", "/usr/bin/sudo"] where !FileManager.default.isExecutableFile(atPath: tool) {
            try TestEnvironment.missing("\(tool) (Debian packages passwd and sudo) is not installed")
        }
        fixture = try await NodeFixture()
    }

    override func tearDown() async throws {
        await fixture?.close()
        for login in logins where getpwnam(login) != nil { _ = try? Programs.execute("/usr/sbin/userdel", ["--remove", "--", login]) }
        for login in logins { unlink(HostSudoersPath.of(login)) }
        for group in groups where getgrnam(group) != nil { _ = try? Programs.execute("/usr/sbin/groupdel", ["--", group]) }
    }

    private func newName(_ prefix: String) -> String {
        "\(prefix)\(UUID().uuidString.prefix(8).lowercased().filter(\.isLetter))x"
    }

    /// A user (`alice`, or `alice-<login>` after the first) whose role allows `login` on the
    /// test node and provisions it; the key of a certificate for it.
    private func provisioning(_ login: String, mode: RoleOptions.HostUserMode, groups: [String] = [], sudoers: [String] = []) async throws -> String {
        let user = logins.isEmpty ? "alice" : "alice-\(login.lowercased())"
        logins.append(login)
        var options = RoleOptions()
        options.createHostUserMode = mode
        try await fixture.addUser(user, logins: [login], options: options)
        try await fixture.identity.putRole(Role(name: "role-\(user)", options: options,
                                                allow: RoleConditions(logins: [login], nodeLabels: ["env": ["test"]], hostGroups: groups, hostSudoers: sudoers)),
                                           by: "admin")
        return try await fixture.certifiedKey(user, principals: [login])
    }

    private func supplementaryGroups(_ login: String) throws -> [String] {
        let result = try Programs.execute("/usr/bin/id", ["-Gn", login])
        return result.output.split(whereSeparator: \.isWhitespace).map(String.init).filter { $0 != login }.sorted()
    }

    /// The events of `name` about `login`, once `sessions` of its sessions have written their
    /// `session.end` (events are written by tasks of their own: a count taken earlier could miss some).
    private func events(_ name: String, login: String, sessions: Int) async throws -> [AuditEvent] {
        let deadline = Date().addingTimeInterval(10)
        while try await fixture.events("session.end", atLeast: 0, timeout: 0).filter({ $0.fields["login"]?.stringValue == login }).count < sessions, Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(200))
        return try await fixture.events(name, atLeast: 0, timeout: 0).filter { $0.fields["login"]?.stringValue == login }
    }

    func testKeepModeMakesTheLoginWithItsGroupsAndSudoersAndKeepsIt() async throws {
        let login = newName("pck"), group = newName("pcg")
        groups.append(group)
        let key = try await provisioning(login, mode: .keep, groups: [group, "users"], sudoers: ["ALL=(ALL) NOPASSWD: /usr/bin/id"])
        XCTAssertNil(getpwnam(login))

        let result = try await fixture.ssh(key: key, login: login, "id -un; echo $HOME; test -d $HOME && echo home")
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "\(login)\n/home/\(login)\nhome\n")
        XCTAssertNotNil(getpwnam(login), "kept after the session")
        XCTAssertEqual(try supplementaryGroups(login), [group, "portcullis-managed", "users"].sorted())
        let sudo = try Programs.execute("/usr/bin/sudo", ["-l", "-U", login])
        XCTAssertTrue(sudo.output.contains("(ALL) NOPASSWD: /usr/bin/id"), sudo.output)
        let uid = try XCTUnwrap(getpwnam(login)).pointee.pw_uid
        let rules = try String(contentsOfFile: HostSudoersPath.of(login), encoding: .utf8)
        XCTAssertTrue(rules.contains("\n#\(uid) ALL=(ALL) NOPASSWD: /usr/bin/id\n"), "the rule names the uid, never a name sudo could misread: \(rules)")
        let created = try await fixture.event("host_user.create") { $0.fields["login"]?.stringValue == login }
        let event = try XCTUnwrap(created, "host_user.create is audited")
        XCTAssertEqual(event.fields["mode"]?.stringValue, "keep")
        XCTAssertEqual(event.fields["sudoers"], .integer(1))
        XCTAssertEqual(event.fields["user"]?.stringValue, "alice")
        XCTAssertTrue(event.fields["created_groups"]?.description.contains(group) ?? false, "\(event.fields)")

        // Unchanged: a second session changes nothing; the role's groups changed: updated once.
        let second = try await fixture.ssh(key: key, login: login, "true")
        XCTAssertEqual(second.status, 0, second.stderr)
        try await fixture.identity.putRole(Role(name: "role-alice", options: { var o = RoleOptions(); o.createHostUserMode = .keep; return o }(),
                                                allow: RoleConditions(logins: [login], nodeLabels: ["env": ["test"]], hostGroups: ["users"])), by: "admin")
        let third = try await fixture.ssh(key: key, login: login, "true")
        XCTAssertEqual(third.status, 0, third.stderr)
        XCTAssertEqual(try supplementaryGroups(login), ["portcullis-managed", "users"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: HostSudoersPath.of(login)), "rules the roles no longer give are removed")
        let updates = try await events("host_user.update", login: login, sessions: 3)
        XCTAssertEqual(updates.count, 1, "\(updates)")
        let creates = try await events("host_user.create", login: login, sessions: 3)
        XCTAssertEqual(creates.count, 1)
    }

    func testDropModeRemovesTheLoginWithItsLastSession() async throws {
        let login = newName("pcd")
        let key = try await provisioning(login, mode: .drop, sudoers: ["ALL=(ALL) NOPASSWD: /usr/bin/id"])
        let result = try await fixture.ssh(key: key, login: login, "id -un; touch ~/made-here; (sleep 300 </dev/null >/dev/null 2>&1 &)")
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "\(login)\n")
        XCTAssertNil(getpwnam(login), "gone with its last session, though a process of it was still running")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/home/\(login)"), "with its home")
        XCTAssertFalse(FileManager.default.fileExists(atPath: HostSudoersPath.of(login)), "and its sudoers rules")
        let deleted = try await fixture.event("host_user.delete") { $0.fields["login"]?.stringValue == login }
        XCTAssertEqual(deleted?.fields["reason"]?.stringValue, "session_end")
        let creates = try await events("host_user.create", login: login, sessions: 1)
        XCTAssertEqual(creates.count, 1)
    }

    func testADropModeUserStaysWhileAnotherOfItsSessionsRuns() async throws {
        let login = newName("pco")
        let key = try await provisioning(login, mode: .drop)
        let options = try await fixture.sshOptions(key: key)
        let long = try ChildProcess("/usr/bin/ssh", options + ["\(login)@127.0.0.1", "sleep 4; id -un"], output: fixture.directory.appendingPathComponent("long.log"))
        defer { long.stop() }
        let deadline = Date().addingTimeInterval(10)
        while getpwnam(login) == nil, Date() < deadline { usleep(20_000) }
        XCTAssertNotNil(getpwnam(login))
        let short = try await fixture.ssh(key: key, login: login, "id -un")
        XCTAssertEqual(short.status, 0, short.stderr)
        XCTAssertNotNil(getpwnam(login), "the other session still holds it")
        let swept = try await fixture.node.sweepHostUsersOnce()
        XCTAssertFalse(swept.contains { $0.login == login }, "the sweep leaves a held user alone")
        XCTAssertEqual(long.wait(timeout: 20), 0, long.output)
        XCTAssertTrue(long.output.contains(login), long.output)
        XCTAssertNil(getpwnam(login), "gone with the last one")
        let deletes = try await events("host_user.delete", login: login, sessions: 2)
        XCTAssertEqual(deletes.count, 1)
    }

    func testADropModeUserLeftByAKilledLauncherIsSwept() async throws {
        let login = newName("pcs")
        let key = try await provisioning(login, mode: .drop)
        let options = try await fixture.sshOptions(key: key)
        let session = try ChildProcess("/usr/bin/ssh", options + ["\(login)@127.0.0.1", "sleep 300"], output: fixture.directory.appendingPathComponent("ssh.log"))
        defer { session.stop() }
        var launcher: pid_t?
        let deadline = Date().addingTimeInterval(20)
        while launcher == nil, Date() < deadline {
            launcher = Self.processes(named: "portcullis-exec").first { Self.commandLine($0).contains(login) }
            if launcher == nil || getpwnam(login) == nil { launcher = nil; usleep(50_000) }
        }
        let pid = try XCTUnwrap(launcher, "the session's launcher runs")
        // A crash: the launcher dies without giving anything back, then its session.
        kill(pid, SIGKILL)
        session.stop()
        _ = session.wait(timeout: 10)
        let uid = try XCTUnwrap(getpwnam(login)).pointee.pw_uid
        let gone = Date().addingTimeInterval(10)
        while Self.processes(ofUID: uid) > 0, Date() < gone { usleep(50_000) }
        XCTAssertEqual(Self.processes(ofUID: uid), 0, "the session's processes were ended")
        XCTAssertNotNil(getpwnam(login), "nobody removed it")

        // The node lets go of the dead session's hold once it sees the connection end, which
        // under load can come after its processes are gone: the sweep (periodic in the daemon) is tried until then.
        var swept: [HostUserChange] = []
        let sweepDeadline = Date().addingTimeInterval(15)
        repeat {
            swept = try await fixture.node.sweepHostUsersOnce()
            if swept.isEmpty { try await Task.sleep(for: .milliseconds(250)) }
        } while swept.isEmpty && Date() < sweepDeadline
        XCTAssertTrue(swept.contains { $0.login == login && $0.action == .delete && $0.reason == "sweep" }, "\(swept)")
        XCTAssertNil(getpwnam(login))
        let deleted = try await fixture.event("host_user.delete") { $0.fields["login"]?.stringValue == login }
        XCTAssertEqual(deleted?.fields["reason"]?.stringValue, "sweep")
        XCTAssertEqual(deleted?.fields["user"]?.stringValue, "portcullis")
    }

    /// The host-user sweep reports each removal as soon as it is done; one it cannot report (its
    /// node gone: the control socket's peer closed) is kept for the next sweep, which reports it.
    /// The gone node does not kill the sweep half-way (SIGPIPE), losing the removal's record.
    func testASweepWhoseNodeIsGoneKeepsItsRemovalForTheNext() async throws {
        let login = newName("pcg")
        logins.append(login)
        for group in ["portcullis-managed", "portcullis-drop"] where getgrnam(group) == nil {
            try Programs.executeSuccessfully("/usr/sbin/groupadd", ["--system", group])
        }
        try Programs.executeSuccessfully("/usr/sbin/useradd", ["--create-home", "--groups", "portcullis-managed,portcullis-drop", "--", login])
        var ends: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0, &ends), 0)
        close(ends[0])
        let sweep = try ChildProcess(try Programs.path("portcullis-exec"), ["--sweep-host-users", "--host-users"], descriptor3: ends[1])
        close(ends[1])
        XCTAssertEqual(sweep.wait(timeout: 60), 0, "the sweep ended although nobody took its reports")
        XCTAssertNil(getpwnam(login), "the sweep removed the drop-mode user")

        let swept = try await fixture.node.sweepHostUsersOnce()
        XCTAssertTrue(swept.contains { $0.login == login && $0.action == .delete && $0.reason == "sweep" }, "the next sweep reported the kept removal: \(swept)")
        let deleted = try await fixture.event("host_user.delete") { $0.fields["login"]?.stringValue == login }
        XCTAssertEqual(deleted?.fields["reason"]?.stringValue, "sweep")
    }

    func testAnExistingUnmanagedLoginIsUsedAsItIsAndNeverRemoved() async throws {
        let login = newName("pcu")
        logins.append(login)
        try Programs.executeSuccessfully("/usr/sbin/useradd", ["--create-home", "--shell", "/bin/sh", "--groups", "users", "--", login])
        try Programs.executeSuccessfully("/usr/sbin/usermod", ["--password", "*", "--", login])
        // In the drop marker alone (as a careless administrator might put it): still not ours.
        if getgrnam("portcullis-drop") == nil { try Programs.executeSuccessfully("/usr/sbin/groupadd", ["--system", "portcullis-drop"]) }
        try Programs.executeSuccessfully("/usr/sbin/usermod", ["-aG", "portcullis-drop", "--", login])
        try "kept\n".write(toFile: "/home/\(login)/notes", atomically: true, encoding: .utf8)
        let before = try Self.accountState(login)
        let key = try await provisioning(login, mode: .drop, groups: ["audio"], sudoers: ["ALL=(ALL) ALL"])
        let result = try await fixture.ssh(key: key, login: login, "id -un")
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "\(login)\n")
        XCTAssertEqual(try Self.accountState(login), before, "same uid, groups, home and shadow line")
        XCTAssertFalse(FileManager.default.fileExists(atPath: HostSudoersPath.of(login)))
        _ = try await fixture.node.sweepHostUsersOnce()
        XCTAssertEqual(try Self.accountState(login), before, "the sweep leaves it alone")
        XCTAssertEqual(try String(contentsOfFile: "/home/\(login)/notes", encoding: .utf8), "kept\n", "its home too")
        for name in ["host_user.create", "host_user.update", "host_user.delete"] {
            let found = try await events(name, login: login, sessions: 1)
            XCTAssertEqual(found.count, 0, name)
        }
    }

    func testTenFirstSessionsOfOneNewLoginAllStartAndMakeItOnce() async throws {
        let login = newName("pcc")
        let key = try await provisioning(login, mode: .keep)
        let options = try await fixture.sshOptions(key: key)
        let sessions = try (0..<10).map { index in
            try ChildProcess("/usr/bin/ssh", options + ["\(login)@127.0.0.1", "id -un"], output: fixture.directory.appendingPathComponent("ssh-\(index).log"))
        }
        for session in sessions {
            let status = session.wait(timeout: 60)
            XCTAssertEqual(status, 0, session.output)
            XCTAssertTrue(session.output.contains(login), session.output)
        }
        XCTAssertNotNil(getpwnam(login))
        let created = try await events("host_user.create", login: login, sessions: 10)
        XCTAssertEqual(created.count, 1, "made once")
    }

    func testWhatMustNotBeProvisionedIsRefusedAndLeavesNothing() async throws {
        // A system account of the host, and root.
        for (login, expected) in [("daemon", "system account of this host"), ("root", "it is root on this host")] {
            var options = RoleOptions()
            options.createHostUserMode = .keep
            let name = "u\(login)"
            try await fixture.addUser(name, logins: [login], options: options)
            let key = try await fixture.certifiedKey(name, principals: [login])
            let before = try Self.accountState(login)
            let result = try await fixture.ssh(key: key, login: login, "echo ran")
            XCTAssertNotEqual(result.status, 0)
            XCTAssertFalse(result.stdout.contains("ran"))
            XCTAssertTrue(result.stderr.contains(expected), result.stderr)
            XCTAssertEqual(try Self.accountState(login), before)
            let rejected = try await fixture.event("session.rejected") { ($0.fields["reason"]?.stringValue ?? "").contains(expected) }
            XCTAssertNotNil(rejected, "the refusal is audited")
        }

        // Names sudo or useradd would misread, and rules that would reach other users.
        for (login, sudoers, expected) in [("Admins", [String](), "not a user name this host would make"),
                                           (newName("pcl"), [", %users ALL=(ALL) NOPASSWD: ALL"], "user list")] {
            let key = try await provisioning(login, mode: .keep, sudoers: sudoers)
            let result = try await fixture.ssh(key: key, login: login, "echo ran")
            XCTAssertNotEqual(result.status, 0)
            XCTAssertTrue(result.stderr.contains(expected), result.stderr)
            XCTAssertNil(getpwnam(login), "nothing made for \(login)")
        }

        // Rules visudo refuses: no user is made.
        let login = newName("pcv")
        let key = try await provisioning(login, mode: .keep, sudoers: ["ALL=(ALL) NOPASSWD: not-a-path"])
        let result = try await fixture.ssh(key: key, login: login, "echo ran")
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("not valid sudoers rules"), result.stderr)
        XCTAssertNil(getpwnam(login), "nothing half-made")
        XCTAssertFalse(FileManager.default.fileExists(atPath: HostSudoersPath.of(login)))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: "/etc/sudoers.d").filter { $0.hasPrefix(".portcullis") }
        XCTAssertEqual(leftovers, [], "no staging file left")
    }

    // MARK: Helpers

    /// uid, groups, home and the shadow line: what "untouched" means.
    static func accountState(_ login: String) throws -> [String] {
        let entry = try XCTUnwrap(getpwnam(login))
        let shadow = try String(contentsOfFile: "/etc/shadow", encoding: .utf8).split(separator: "\n").first { $0.hasPrefix("\(login):") }.map(String.init) ?? ""
        let groups = try Programs.execute("/usr/bin/id", ["-G", login]).output
        return ["\(entry.pointee.pw_uid)", "\(entry.pointee.pw_gid)", String(cString: entry.pointee.pw_dir), groups, shadow]
    }

    static func processes(named name: String) -> [pid_t] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(pid_t.init).filter { pid in
            ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "").hasPrefix(String(name.prefix(15)))
        }
    }

    static func processes(ofUID uid: uid_t) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { pid_t($0) != nil }.filter { pid in
            ((try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? "").contains("\nUid:\t\(uid)\t")
        }.count
    }

    static func commandLine(_ pid: pid_t) -> String {
        String(decoding: FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data(), as: UTF8.self).replacingOccurrences(of: "\0", with: " ")
    }
}

/// Where the launcher writes a login's sudoers rules (`HostSudoers.path`, in the launcher).
enum HostSudoersPath {
    static func of(_ login: String) -> String {
        "/etc/sudoers.d/portcullis-" + login.replacingOccurrences(of: "_", with: "__").replacingOccurrences(of: ".", with: "_d")
    }
}
