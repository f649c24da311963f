import Audit
import Foundation
import Identity
@testable import Node
@testable import Proxy
import SessionControl
import Storage
import TestSupport
import XCTest

/// The proxy's terminating mode holds a user to the same controls as a node, through the same
/// session core: idle timeout, certificate expiry, `ssh_file_copy`, `env` rules, a lost lease —
/// and its events carry the node's field set.
final class TerminatingControlsTests: XCTestCase {
    override class func tearDown() { NodeFixture.removeLogin() }

    /// `ssh … login%web2@proxy` with `user`'s fresh certificate.
    private func terminating(_ fixture: NodeFixture, proxyPort: Int, key: String, _ arguments: [String], timeout: TimeInterval = 60) async throws
        -> (status: Int32, stdout: String, stderr: String) {
        let options = try await fixture.sshOptions(key: key).map { $0 == "\(fixture.port)" ? "\(proxyPort)" : $0 }
        let flags = arguments.filter { $0.hasPrefix("-") }, command = arguments.filter { !$0.hasPrefix("-") }
        return try NodeFixture.run("/usr/bin/ssh", flags + options + ["\(NodeFixture.login)%web2@127.0.0.1"] + command, timeout: timeout)
    }

    func testIdleTimeoutAndCertificateExpiryEndTerminatingSessions() async throws {
        try NodeFixture.requirements()
        try await NodeFixture.withProxy { fixture, _, port in
            let sshd = try await fixture.stockSSHD()
            defer { sshd.stop() }
            try await fixture.registerOpenSSH(at: sshd)
            var options = RoleOptions()
            options.clientIdleTimeout = .after(.seconds(2))
            try await fixture.addUser("alice", options: options)
            let began = Date()
            let idle = try await self.terminating(fixture, proxyPort: port, key: try await fixture.certifiedKey("alice"), ["-tt", "echo started; sleep 60"])
            XCTAssertTrue(idle.stdout.contains("started"), idle.stderr + sshd.log)
            XCTAssertTrue((idle.stdout + idle.stderr).contains("Client exceeded idle timeout of 2s"), idle.stdout + idle.stderr)
            XCTAssertLessThan(Date().timeIntervalSince(began), 15, "ended at the timeout, not when the command finished")
            let disconnect = try await XCTUnwrapAsync(try await fixture.event("client.disconnect") { $0.fields["reason"]?.stringValue?.contains("idle") == true })
            XCTAssertEqual(disconnect.fields["server_id"]?.stringValue, "web2")

            try await fixture.addUser("bob")
            let expiring = try await fixture.certifiedKey("bob", validFor: .seconds(4))
            let expired = try await self.terminating(fixture, proxyPort: port, key: expiring, ["echo started; sleep 60"])
            XCTAssertTrue(expired.stdout.contains("started"), expired.stderr)
            XCTAssertTrue(expired.stderr.contains("client certificate expired at"), expired.stderr)
        }
    }

    func testFileCopyAndEnvironmentFollowTheNodesRules() async throws {
        try NodeFixture.requirements()
        try await NodeFixture.withProxy { fixture, _, port in
            // The host would take any variable: what reaches it is what the proxy let through.
            let sshd = try await fixture.stockSSHD(extraConfiguration: ["AcceptEnv *"])
            defer { sshd.stop() }
            try await fixture.registerOpenSSH(at: sshd)
            var noCopy = RoleOptions()
            noCopy.sshFileCopy = false
            try await fixture.addUser("alice", options: noCopy)
            let key = try await fixture.certifiedKey("alice")
            let sftp = try await self.terminating(fixture, proxyPort: port, key: key, ["-s", "sftp"])
            XCTAssertNotEqual(sftp.status, 0)
            XCTAssertTrue(sftp.stderr.contains("file copying (scp, sftp) is not permitted for user \"alice\""), sftp.stderr)
            let scp = try await self.terminating(fixture, proxyPort: port, key: key, ["scp -t /tmp"])
            XCTAssertEqual(scp.status, 1, scp.stderr)
            XCTAssertTrue(scp.stderr.contains("file copying (scp, sftp) is not permitted"), scp.stderr)
            let failure = try await XCTUnwrapAsync(try await fixture.event("exec") { $0.code == "T3002E" })
            XCTAssertEqual(failure.fields["exitError"]?.stringValue, "ssh_file_copy is off")

            let env = try await self.terminating(fixture, proxyPort: port, key: key,
                                                 ["-oSetEnv=LC_PORTCULLIS=kept EVIL_PRELOAD=dropped", "echo \"[$LC_PORTCULLIS][$EVIL_PRELOAD]\""])
            XCTAssertEqual(env.stdout, "[kept][]\n", env.stderr + sshd.log)
        }
    }

    func testALeaseLostAtTheProxyEndsTheConnectionWithItsMessage() async throws {
        try NodeFixture.requirements()
        try await NodeFixture.withProxy(sessionControlTimeout: .seconds(2)) { fixture, _, port in
            let sshd = try await fixture.stockSSHD()
            defer { sshd.stop() }
            try await fixture.registerOpenSSH(at: sshd)
            var limited = RoleOptions()
            limited.maxConnections = 1
            try await fixture.addUser("alice", options: limited)
            let options = try await fixture.sshOptions(key: try await fixture.certifiedKey("alice")).map { $0 == "\(fixture.port)" ? "\(port)" : $0 }
            let live = try ChildProcess("/usr/bin/ssh", ["-tt"] + options + ["\(NodeFixture.login)%web2@127.0.0.1", "echo started; sleep 60"],
                                        output: fixture.directory.appendingPathComponent("lease.log"))
            try await waitUntil(timeout: 10) { live.output.contains("started") }
            // The cluster drops the place (as after a partition that outlived the lease).
            let dropped = try await fixture.backend.delete(try Keyspace.connectionSemaphores.key("alice"))
            XCTAssertTrue(dropped)
            XCTAssertNotNil(live.wait(timeout: 10), "the connection ended once its lease could not be renewed")
            XCTAssertTrue(live.output.contains("the connection limit's lease was dropped"), live.output)
            let disconnect = try await XCTUnwrapAsync(try await fixture.event("client.disconnect") { $0.fields["reason"]?.stringValue?.contains("lease") == true })
            XCTAssertEqual(disconnect.fields["server_id"]?.stringValue, "web2")
            XCTAssertEqual(disconnect.fields["user"]?.stringValue, "alice")
        }
    }

    /// One test over both: the events a node and the proxy write for the same things have the same fields.
    func testNodeAndProxyWriteTheSameFieldsForTheSameEvents() async throws {
        try NodeFixture.requirements()
        try await NodeFixture.withProxy { fixture, proxy, port in
            let sshd = try await fixture.stockSSHD()
            defer { sshd.stop() }
            try await fixture.registerOpenSSH(at: sshd)
            var limited = RoleOptions()
            limited.maxConnections = 1
            try await fixture.addUser("alice", options: limited)
            try await fixture.addUser("bob", options: limited)
            let atNode = try await fixture.certifiedKey("alice")
            let atProxy = try await fixture.certifiedKey("bob")

            // exec, session.start, session.end
            let direct = try await fixture.ssh(key: atNode, "exit 0")
            XCTAssertEqual(direct.status, 0, direct.stderr)
            let proxied = try await self.terminating(fixture, proxyPort: port, key: atProxy, ["exit 0"])
            XCTAssertEqual(proxied.status, 0, proxied.stderr)
            // session.rejected (max_connections) and client.disconnect (an administrator ends the session)
            for (user, key, registry, viaProxy) in [("alice", atNode, fixture.node.registry, false), ("bob", atProxy, proxy.registry, true)] {
                let options = try await fixture.sshOptions(key: key).map { viaProxy && $0 == "\(fixture.port)" ? "\(port)" : $0 }
                let target = viaProxy ? "\(NodeFixture.login)%web2@127.0.0.1" : "\(NodeFixture.login)@127.0.0.1"
                let live = try ChildProcess("/usr/bin/ssh", ["-tt"] + options + [target, "echo started; sleep 60"],
                                            output: fixture.directory.appendingPathComponent("\(user).log"))
                try await waitUntil(timeout: 10) { live.output.contains("started") }
                XCTAssertEqual(try NodeFixture.run("/usr/bin/ssh", options + [target, "true"]).status, 255, "one connection at a time")
                let sid = try XCTUnwrap(registry.list().first { $0.user == user }?.sid)
                XCTAssertTrue(registry.terminate(sid, reason: "ended by the test"))
                XCTAssertNotNil(live.wait(timeout: 10))
            }
            for name in ["exec", "session.start", "session.end", "session.rejected", "client.disconnect", "session.data", "connection.start", "connection.end"] {
                let events = try await fixture.events(name, atLeast: 2)
                // The same kind of event on both sides: for exec, the `exit 0` one (the sessions
                // ended by the test have exitError, and which is written first varies).
                let alike = { (event: AuditEvent) in name != "exec" || event.fields["command"]?.stringValue == "exit 0" }
                let node = try XCTUnwrap(events.first { $0.user == "alice" && alike($0) }, name)
                let proxied = try XCTUnwrap(events.first { $0.user == "bob" && alike($0) }, name)
                XCTAssertEqual(Set(node.fields.keys), Set(proxied.fields.keys), "\(name): node \(node.fields.keys.sorted()) proxy \(proxied.fields.keys.sorted())")
                XCTAssertEqual(proxied.fields["server_id"]?.stringValue, "web2", name)
                XCTAssertEqual(node.fields["server_id"]?.stringValue, "node-test", name)
            }
        }
    }
}
