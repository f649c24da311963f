import AdminAPI
import Audit
import Foundation
import HostSessions
import Identity
import Node
import Storage
import TestSupport
import XCTest

/// Who gets in, and the per-connection controls (AC-10/AC-12): refusals with `auth` events,
/// `max_sessions`, the idle timeout, the certificate's expiry, port forwarding by role; and the
/// interactive session's recording.
final class NodeControlTests: NodeTestCase {

    func testOnlyCertificatesFromOurCAForTheRightLoginAndRoleGetIn() async throws {
        try await fixture.addUser("alice")
        let otherBackend = try SQLiteBackend(path: fixture.directory.appendingPathComponent("other.db").path)
        defer { Task { await otherBackend.close() } }
        let otherCA = CertificateAuthority(kind: .user, clusterName: "other", backend: otherBackend, crypto: fixture.crypto)
        try await otherCA.ensureCreated()
        let cases: [(name: String, key: String, login: String, reason: String)] = [
            ("plain key", try fixture.plainKey(), NodeFixture.login, "plain keys are not accepted"),
            ("another CA", try await fixture.certifiedKey("alice", authority: otherCA), NodeFixture.login, "not signed by a trusted"),
            ("wrong principal", try await fixture.certifiedKey("alice", principals: ["root"]), NodeFixture.login, "principal"),
            ("expired", try await fixture.certifiedKey("alice", validFor: .seconds(60), issuedAt: Date().addingTimeInterval(-3600)),
             NodeFixture.login, "expired"),
            ("role denies the login", try await fixture.certifiedKey("alice", principals: ["root"]), "root", "no role allows login \"root\""),
        ]
        for (index, item) in cases.enumerated() {
            let result = try await fixture.ssh(key: item.key, login: item.login, "echo in")
            XCTAssertEqual(result.status, 255, "\(item.name): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("Permission denied"), "\(item.name): \(result.stderr)")
            XCTAssertFalse(result.stdout.contains("in"), item.name)
            let events = try await fixture.events("auth", atLeast: index + 1)
            XCTAssertEqual(events.count, index + 1, "one auth event per refused connection (\(item.name))")
            let event = try XCTUnwrap(events.first, item.name)  // newest first
            XCTAssertEqual(event.fields["code"]?.stringValue, "T3007W")
            XCTAssertEqual(event.fields["success"], false)
            XCTAssertEqual(event.fields["login"]?.stringValue, item.login)
            XCTAssertTrue(event.fields["error"]?.stringValue?.contains(item.reason) == true, "\(item.name): \(event.fields["error"] ?? "")")
        }
        // And the right certificate does get in, without an auth event for the plain key OpenSSH tries first.
        let good = try await fixture.ssh(key: try await fixture.certifiedKey("alice"), "echo in")
        XCTAssertEqual(good.stdout, "in\n", good.stderr)
        let events = try await fixture.events("auth", atLeast: cases.count + 1, timeout: 1)
        XCTAssertEqual(events.count, cases.count)
    }

    func testALockRefusesNewConnectionsAndCertificatesWithItsMessage() async throws {
        let totp = try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice")
        try await fixture.identity.putLock(Lock(name: "incident-42", target: Lock.Target(user: "alice"), message: "under investigation",
                                                createdBy: "admin"), by: "admin")
        let refused = try await fixture.ssh(key: key, "echo in")
        XCTAssertEqual(refused.status, 255)
        XCTAssertFalse(refused.stdout.contains("in"))
        XCTAssertTrue(refused.stderr.contains("access denied: locked (user=alice): under investigation"), refused.stderr)
        let rejected = try await fixture.events("session.rejected")
        XCTAssertEqual(rejected.first?.fields["reason"]?.stringValue, "access denied: locked (user=alice): under investigation")
        XCTAssertEqual(rejected.first?.fields["user"]?.stringValue, "alice")
        let created = try await fixture.events("lock.created")
        XCTAssertEqual(created.first?.fields["target"]?.stringValue, "user=alice")

        // No new certificate either.
        let publicKey = try String(contentsOfFile: key + ".pub", encoding: .utf8)
        do {
            _ = try await fixture.identity.login(LoginRequest(user: "alice", password: "correct horse battery",
                                                              totpCode: try totp.code(at: Date()), publicKey: publicKey))
            XCTFail("a locked user got a certificate")
        } catch let error as IdentityError {
            XCTAssertEqual("\(error)", "no certificate issued: access denied: locked (user=alice): under investigation")
        }

        // A lock on another login does not stop this one; removing the lock lets alice in again.
        try await fixture.identity.deleteLock("incident-42", by: "admin")
        try await fixture.identity.putLock(Lock(name: "no-root", target: Lock.Target(login: "root"), createdBy: "admin"), by: "admin")
        let allowed = try await fixture.ssh(key: key, "echo in")
        XCTAssertEqual(allowed.stdout, "in\n", allowed.stderr)
        let deleted = try await fixture.events("lock.deleted")
        XCTAssertEqual(deleted.first?.fields["name"]?.stringValue, "incident-42")
    }

    /// A lock on a node or a login applies where there is that node or login: sessions there, not
    /// certificate issuance (which has neither) for anyone.
    func testANodeOrLoginLockStopsItsSessionsButNotLogins() async throws {
        let totp = try await fixture.addUser("bob")
        let key = try await fixture.certifiedKey("bob")
        let publicKey = try String(contentsOfFile: key + ".pub", encoding: .utf8)
        for (index, target) in [Lock.Target(node: "node-test"), Lock.Target(login: NodeFixture.login)].enumerated() {
            try await fixture.identity.putLock(Lock(name: "lock-\(index)", target: target, createdBy: "admin"), by: "admin")
            // A fresh step each time: a TOTP code is accepted once.
            let now = Date().addingTimeInterval(Double(index) * 30)
            let result = try await fixture.identity.login(LoginRequest(user: "bob", password: "correct horse battery",
                                                                       totpCode: try totp.code(at: now), publicKey: publicKey), now: now)
            XCTAssertEqual(result.logins, [NodeFixture.login], "a \(target.description) lock does not stop certificate issuance")
            let refused = try await fixture.ssh(key: key, "echo in")
            XCTAssertEqual(refused.status, 255, target.description)
            XCTAssertFalse(refused.stdout.contains("in"), target.description)
            XCTAssertTrue(refused.stderr.contains("access denied: locked (\(target.description))"), refused.stderr)
            try await fixture.identity.deleteLock("lock-\(index)", by: "admin")
        }
        let allowed = try await fixture.ssh(key: key, "echo in")
        XCTAssertEqual(allowed.stdout, "in\n", allowed.stderr)
    }

    func testMaxConnectionsAdmitsExactlyTheLimitAndFreesAPlaceAtOnce() async throws {
        var options = RoleOptions()
        options.maxConnections = 2
        try await fixture.addUser("alice", options: options)
        let key = try await fixture.certifiedKey("alice")
        let sshOptions = try await fixture.sshOptions(key: key)
        // 20 at once: exactly 2 get in, 18 are told why.
        let clients = try (0..<20).map { index in
            try ChildProcess("/usr/bin/ssh", sshOptions + ["\(NodeFixture.login)@127.0.0.1", "echo in; sleep 3"],
                             output: fixture.directory.appendingPathComponent("client-\(index).log"))
        }
        let statuses = clients.map { $0.wait(timeout: 60) }
        XCTAssertEqual(statuses.filter { $0 == 0 }.count, 2, "\(statuses)")
        let refused = clients.filter { $0.exitStatus == 255 }
        XCTAssertEqual(refused.count, 18)
        for client in refused {
            XCTAssertTrue(client.output.contains("too many concurrent ssh connections for user \"alice\" (max=2)"), client.output)
        }
        let rejected = try await fixture.events("session.rejected", atLeast: 18)
        XCTAssertEqual(rejected.filter { $0.fields["max"] == .integer(2) && $0.fields["user"]?.stringValue == "alice" }.count, 18)

        // Two held; when one closes, its place is free at once (not when its lease would expire).
        let held = try (0..<2).map { index in
            try ChildProcess("/usr/bin/ssh", sshOptions + ["\(NodeFixture.login)@127.0.0.1", "sleep 30"],
                             output: fixture.directory.appendingPathComponent("held-\(index).log"))
        }
        try await waitUntil { self.fixture.node.registry.list().count == 2 }
        let third = try await fixture.ssh(key: key, "echo third")
        XCTAssertEqual(third.status, 255, third.stderr)
        held[0].stop()
        let closed = Date()
        try await waitUntil(timeout: 1) { self.fixture.node.registry.list().count == 1 }
        let next = try await fixture.ssh(key: key, "echo next")
        XCTAssertEqual(next.stdout, "next\n", next.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(closed), 1.5, "a new connection got in within a second of the close (plus its own handshake)")
        held[1].stop()
    }

    func testALockEndsASessionSummaryWithinTwoSeconds() async throws {
        try await fixture.addUser("alice")
        try await fixture.addUser("bob")
        let sshOptions = try await fixture.sshOptions(key: try await fixture.certifiedKey("alice"))
        let alice = try ChildProcess("/usr/bin/ssh", ["-tt"] + sshOptions + ["\(NodeFixture.login)@127.0.0.1", "echo started; sleep 60"],
                                     output: fixture.directory.appendingPathComponent("alice.log"))
        let bob = try ChildProcess("/usr/bin/ssh", (try await fixture.sshOptions(key: try await fixture.certifiedKey("bob")))
                                    + ["\(NodeFixture.login)@127.0.0.1", "sleep 60"])
        defer { bob.stop() }
        try await waitUntil { self.fixture.node.registry.list().count == 2 }
        try await fixture.identity.putLock(Lock(name: "stop-alice", target: Lock.Target(user: "alice"), message: "incident 7",
                                                createdBy: "admin"), by: "admin")
        let locked = Date()
        XCTAssertNotNil(alice.wait(timeout: 2), "alice's session ended within 2 s of the lock")
        XCTAssertLessThan(Date().timeIntervalSince(locked), 2)
        XCTAssertTrue(alice.output.contains("access denied: locked (user=alice): incident 7"), alice.output)
        XCTAssertTrue(bob.isRunning, "a lock on alice leaves bob alone")
        let disconnects = try await fixture.events("client.disconnect")
        XCTAssertEqual(disconnects.first?.fields["reason"]?.stringValue, "access denied: locked (user=alice): incident 7")
        XCTAssertEqual(disconnects.first?.fields["user"]?.stringValue, "alice")
    }

    /// An ended session is hung up on first, as sshd's closed terminal would (its programs run
    /// their exit handlers: a shell killed outright in its startup files left `pyenv rehash`'s
    /// lock behind, and every later login waited a minute on it); what ignores the hangup is
    /// killed after the grace.
    func testAnAdministratorEndsOneSession() async throws {
        try await fixture.addUser("alice")
        // Somewhere the session's login may write.
        let shared = fixture.directory.appendingPathComponent("shared")
        try FileManager.default.createDirectory(at: shared, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o777])
        let hungUp = shared.appendingPathComponent("hung-up").path
        let survivor = shared.appendingPathComponent("survivor.pid").path
        let command = "(trap '' HUP; exec sleep 300) & echo $! > \(survivor); trap 'echo hung up > \(hungUp); exit 1' HUP; "
            + "echo started; sleep 60 & wait"
        let client = try ChildProcess("/usr/bin/ssh", ["-tt"] + (try await fixture.sshOptions(key: try await fixture.certifiedKey("alice")))
                                       + ["\(NodeFixture.login)@127.0.0.1", command],
                                      output: fixture.directory.appendingPathComponent("client.log"))
        try await waitUntil { self.fixture.node.registry.list().count == 1 && FileManager.default.fileExists(atPath: survivor) }
        let sid = try XCTUnwrap(fixture.node.registry.list().first?.sid)
        XCTAssertFalse(fixture.node.registry.terminate("no-such-session", reason: "x"))
        XCTAssertTrue(fixture.node.registry.terminate(sid, reason: "session terminated by pcctl:root: maintenance"))
        XCTAssertNotNil(client.wait(timeout: 5))
        XCTAssertTrue(client.output.contains("session terminated by pcctl:root: maintenance"), client.output)
        let disconnects = try await fixture.events("client.disconnect")
        XCTAssertEqual(disconnects.first?.fields["sid"]?.stringValue, sid)
        let end = try await fixture.events("session.end")
        XCTAssertEqual(end.first?.fields["sid"]?.stringValue, sid)
        XCTAssertEqual(try? String(contentsOfFile: hungUp, encoding: .utf8), "hung up\n", "the shell was hung up on and ran its trap")
        let pid = try XCTUnwrap(pid_t((try String(contentsOfFile: survivor, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)))
        try await waitUntil(timeout: SessionCgroup.grace + 3) { Self.isGone(pid) }
    }

    /// No such process, or only its zombie.
    private static func isGone(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
        return stat.split(separator: ")").last?.split(separator: " ").first == "Z"
    }

    func testMaxSessionsRefusesTheExtraChannelOnOneConnection() async throws {
        var options = RoleOptions()
        options.maxSessions = 1
        try await fixture.addUser("alice", options: options)
        let key = try await fixture.certifiedKey("alice")
        let control = fixture.directory.appendingPathComponent("mux").path
        let mux = ["-o", "ControlPath=\(control)"]
        // A master connection with no session, then sessions multiplexed over it.
        let masterLog = fixture.directory.appendingPathComponent("master.log").path
        let master = try await fixture.ssh(key: key, nil, options: mux + ["-o", "ControlMaster=yes", "-o", "ControlPersist=60", "-E", masterLog, "-f", "-N"])
        XCTAssertEqual(master.status, 0, master.stderr)
        defer { _ = try? NodeFixture.run("/usr/bin/ssh", mux + ["-O", "exit", "x"]) }
        let first = try ChildProcess("/usr/bin/ssh", mux + (try await fixture.sshOptions(key: key)) + ["\(NodeFixture.login)@127.0.0.1", "sleep 5"])
        try await waitUntil { !self.fixture.node.registry.list().isEmpty }
        let second = try await fixture.ssh(key: key, "echo second", options: mux)
        // OpenSSH then falls back to a connection of its own (a matter for max_connections).
        XCTAssertTrue(second.stderr.contains("Session open refused by peer"), second.stderr)
        // The reason reaches the connection's owner, the master (mux clients only hear "refused").
        let log = try String(contentsOfFile: masterLog, encoding: .utf8)
        XCTAssertTrue(log.contains("too many session channels for user \"alice\" (max=1)"), log)
        let rejected = try await fixture.events("session.rejected")
        XCTAssertEqual(rejected.first?.fields["reason"]?.stringValue, "max_sessions limit reached")
        XCTAssertEqual(rejected.first?.fields["max"], .integer(1))
        first.stop()
    }

    func testAnIdleConnectionIsEndedWithTheMessageAndAnEvent() async throws {
        var options = RoleOptions()
        options.clientIdleTimeout = .after(.seconds(2))
        try await fixture.addUser("alice", options: options)
        let key = try await fixture.certifiedKey("alice")
        let began = Date()
        let result = try await fixture.ssh(key: key, "echo started; sleep 60", options: ["-tt"], timeout: 30)
        let took = Date().timeIntervalSince(began)
        XCTAssertTrue(result.stdout.contains("started"))
        XCTAssertTrue(result.stdout.contains("Client exceeded idle timeout of 2s") || result.stderr.contains("Client exceeded idle timeout of 2s"),
                      "stdout: \(result.stdout) stderr: \(result.stderr)")
        XCTAssertLessThan(took, 10, "ended at the timeout, not when the command finished")
        let disconnect = try await fixture.events("client.disconnect")
        XCTAssertEqual(disconnect.first?.fields["reason"]?.stringValue, "Client exceeded idle timeout of 2s")
        XCTAssertEqual(disconnect.first?.fields["code"]?.stringValue, "T3006I")

        // Output counts as activity: a chatty session outlives the timeout.
        let busy = try await fixture.ssh(key: key, "for i in 1 2 3 4 5 6; do echo tick; sleep 1; done; exit 4", timeout: 30)
        XCTAssertEqual(busy.status, 4, busy.stderr)
    }

    func testTheConnectionEndsWhenTheCertificateExpires() async throws {
        try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice", validFor: .seconds(4))
        let result = try await fixture.ssh(key: key, "echo started; sleep 60", timeout: 30)
        XCTAssertTrue(result.stdout.contains("started"), result.stderr)
        XCTAssertTrue(result.stderr.contains("client certificate expired at"), result.stderr)
        let disconnect = try await fixture.events("client.disconnect")
        XCTAssertTrue(disconnect.first?.fields["reason"]?.stringValue?.hasPrefix("client certificate expired at") == true)
    }

    func testPortForwardingOnlyWhenTheRolePermitsIt() async throws {
        try await fixture.addUser("alice")
        var options = RoleOptions()
        options.portForwarding = true
        try await fixture.addUser("bob", options: options)
        let target = try OpenSSHServer.freePort()
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: in_port_t(UInt16(target).bigEndian),
                                  sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(listener, 4)
        defer { close(listener) }

        let refused = try await fixture.ssh(key: try await fixture.certifiedKey("alice"), nil, options: ["-W", "127.0.0.1:\(target)"], input: Data("x".utf8))
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("port forwarding is not permitted for user \"alice\""), refused.stderr)
        // bob's forwarded connection reaches the target and carries his bytes.
        let payload = fixture.directory.appendingPathComponent("payload")
        try "hello".write(to: payload, atomically: true, encoding: .utf8)
        let forward = try ChildProcess("/usr/bin/ssh", (try await fixture.sshOptions(key: try await fixture.certifiedKey("bob")))
                                        + ["-W", "127.0.0.1:\(target)", "\(NodeFixture.login)@127.0.0.1"], input: payload)
        defer { forward.stop() }
        var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        XCTAssertEqual(poll(&poller, 1, 10_000), 1, "bob's forwarded connection reached the target")
        let accepted = accept(listener, nil, nil)
        XCTAssertGreaterThanOrEqual(accepted, 0)
        if accepted >= 0 {
            var received = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 16)
            while received.count < 5 {
                var readable = pollfd(fd: accepted, events: Int16(POLLIN), revents: 0)
                guard poll(&readable, 1, 10_000) == 1 else { break }
                let count = read(accepted, &buffer, buffer.count)
                guard count > 0 else { break }
                received += buffer.prefix(count)
            }
            XCTAssertEqual(String(decoding: received, as: UTF8.self), "hello")
            close(accepted)
        }
        let ports = try await fixture.events("port", atLeast: 2)
        XCTAssertTrue(ports.contains { $0.fields["code"]?.stringValue == "T3003E" && $0.fields["user"]?.stringValue == "alice" })
        XCTAssertTrue(ports.contains { $0.fields["code"]?.stringValue == "T3003I" && $0.fields["user"]?.stringValue == "bob"
                && $0.fields["addr"]?.stringValue == "127.0.0.1:\(target)" })
    }

    func testInteractiveShellSeesResizesAndItsRecordingReplays() async throws {
        try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice")
        let command = (["/usr/bin/ssh", "-tt"] + (try await fixture.sshOptions(key: key)) + ["\(NodeFixture.login)@127.0.0.1"]).joined(separator: " ")
        let terminal = try TmuxSession(reportingExitOf: command)
        try terminal.type("echo READY-$((6*7))", "Enter")
        XCTAssertTrue(terminal.waitFor("READY-42"), terminal.screen)
        try terminal.type("stty size", "Enter")
        XCTAssertTrue(terminal.waitFor("40 120"), terminal.screen)
        try terminal.resize(width: 100, height: 30)
        try await Task.sleep(for: .milliseconds(300))
        try terminal.type("stty size; whoami", "Enter")
        XCTAssertTrue(terminal.waitFor("30 100"), terminal.screen)
        XCTAssertTrue(terminal.waitFor(NodeFixture.login), terminal.screen)
        let live = fixture.node.registry.list()
        XCTAssertEqual(live.count, 1)
        XCTAssertEqual(live.first?.user, "alice")
        XCTAssertEqual(live.first?.login, NodeFixture.login)
        XCTAssertEqual(live.first?.kind, "shell")
        try terminal.type("exit 6", "Enter")
        XCTAssertEqual(terminal.exitStatus(), 6, terminal.screen)

        let end = try await fixture.events("session.end")
        XCTAssertEqual(end.first?.fields["interactive"], true)
        let sid = try XCTUnwrap(end.first?.fields["sid"]?.stringValue)
        let cast = try await fixture.recordings.asciicast(sid)
        let text = String(decoding: cast, as: UTF8.self)
        let lines = text.split(separator: "\n")
        let header = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        XCTAssertEqual(header["width"] as? Int, 120)
        XCTAssertEqual(header["height"] as? Int, 40)
        XCTAssertTrue(text.contains("READY-42"))
        XCTAssertTrue(text.contains("\"r\",\"100x30\""), "the resize is recorded")
        XCTAssertTrue(text.contains("30 100"))

        // The recording plays in asciinema, as exported.
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/asciinema") else {
            try TestEnvironment.missing("asciinema (Debian package asciinema) is not installed")
        }
        let file = fixture.directory.appendingPathComponent("\(sid).cast")
        try Data(cast).write(to: file)
        let played = try Programs.execute("/usr/bin/script", ["-q", "-c", "stty raw -echo; /usr/bin/asciinema cat \(file.path)", "/dev/null"])
        XCTAssertEqual(played.status, 0, played.output)
        XCTAssertTrue(played.output.contains("READY-42"), played.output)
        XCTAssertTrue(played.output.contains("30 100"))
    }

    func testARecordingFailureWarnsUnderBestEffortAndEndsTheSessionUnderStrict() async throws {
        await fixture.close()
        // Recordings cannot be written: their directory would have to be inside a regular file.
        let blocked = FileManager.default.temporaryDirectory.appendingPathComponent("pc-not-a-directory-\(UUID().uuidString)")
        try Data("x".utf8).write(to: blocked)
        defer { try? FileManager.default.removeItem(at: blocked) }
        fixture = try await NodeFixture { $0.recordingsRoot = blocked.appendingPathComponent("recordings").path }
        try await fixture.addUser("alice")
        var strict = RoleOptions()
        strict.recordSession = .strict
        try await fixture.addUser("bob", options: strict)

        let lenient = try await fixture.ssh(key: try await fixture.certifiedKey("alice"), "echo ran")
        XCTAssertEqual(lenient.status, 0, lenient.stderr)
        XCTAssertEqual(lenient.stdout, "ran\n")
        XCTAssertTrue(lenient.stderr.contains("Warning: node error. This might cause some functionalities not to work correctly."), lenient.stderr)
        let start = try await fixture.events("session.start")
        XCTAssertEqual(start.first?.fields["session_recording"]?.stringValue, "off", "the evidence says the session was not recorded")

        let refused = try await fixture.ssh(key: try await fixture.certifiedKey("bob"), "echo ran")
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertFalse(refused.stdout.contains("ran"))
        XCTAssertTrue(refused.stderr.contains("Session terminating due to node error."), refused.stderr)
        let rejected = try await fixture.events("session.rejected")
        XCTAssertEqual(rejected.first?.fields["user"]?.stringValue, "bob")
    }
}
