import Foundation
import Identity
@testable import Node
@testable import Proxy
import SessionControl
import SSH
import TestSupport
import XCTest

/// The proxy as a jump host: plain OpenSSH `ssh -J` through it reaches a registered node, which
/// authenticates, limits and records; nodes the user's roles cannot see are not reachable.
final class ProxyJumpTests: XCTestCase {
    override class func tearDown() { NodeFixture.removeLogin() }

    func testSSHJumpReachesAllowedNodesOnly() async throws {
        try NodeFixture.requirements()
        try await NodeFixture.withProxy { fixture, proxy, port in try await self.jumps(fixture, proxyPort: port) }
    }

    func testTheProxyRoutesAQualifiedNameAndItsCertificateNamesItsAddress() async throws {
        try NodeFixture.requirements()
        try await NodeFixture.withProxy { fixture, proxy, port in
            try await fixture.addUser("alice")
            let key = try await fixture.certifiedKey("alice")
            try await fixture.node.nodes.heartbeat(NodeRecord(name: "node-test", address: "127.0.0.1:\(fixture.port)", labels: ["env": "test"],
                                                              hostname: "h", version: "t", lastHeartbeat: Date()))
            let config = try await fixture.jumpConfig(key: key)
            let knownHosts = fixture.directory.appendingPathComponent("known_hosts").path
            let patterns = ClusterHostNames.knownHostPatterns(cluster: "test", proxySSHAddress: "127.0.0.1:\(port)")
            try (CertificateAuthority.knownHostsLines(try await fixture.identity.hostCA.trustedKeys(), patterns: patterns).joined(separator: "\n") + "\n")
                .write(toFile: knownHosts, atomically: true, encoding: .utf8)
            func jump(_ target: String) throws -> (status: Int32, stdout: String, stderr: String) {
                // jumpConfig names the fixture's known_hosts path, rewritten above with the cluster's patterns.
                try NodeFixture.run("/usr/bin/ssh", ["-F", config, "-o", "UserKnownHostsFile=\(knownHosts)", "-J", "alice@127.0.0.1:\(port)",
                                                     "\(NodeFixture.login)@\(target)", "echo ok"])
            }
            let qualified = try jump("node-test.test")
            XCTAssertEqual(qualified.stdout, "ok\n", qualified.stderr)
            let bare = try jump("node-test")
            XCTAssertEqual(bare.status, 255, "routed, but the bare name is outside the cluster's known_hosts line")
            XCTAssertTrue(bare.stderr.contains("Host key verification failed"), bare.stderr)
            XCTAssertFalse(HostIdentity.principals(name: "proxy-test", cluster: "test", listenHost: "0.0.0.0").contains("localhost"))
        }
    }

    private func jumps(_ fixture: NodeFixture, proxyPort: Int) async throws {
        var options = RoleOptions()
        options.maxConnections = 2
        try await fixture.addUser("alice", options: options)
        let key = try await fixture.certifiedKey("alice")
        // The node reports in; a second, production node alice's role (env=test) cannot see.
        try await fixture.node.nodes.heartbeat(NodeRecord(name: "node-test", address: "127.0.0.1:\(fixture.port)", labels: ["env": "test"],
                                                          hostname: "h", version: "t", lastHeartbeat: Date()))
        try await fixture.node.nodes.heartbeat(NodeRecord(name: "prod-db", address: "127.0.0.1:\(fixture.port)", labels: ["env": "prod"],
                                                          hostname: "h", version: "t", lastHeartbeat: Date()))
        let config = URL(fileURLWithPath: try await fixture.jumpConfig(key: key))
        func jump(_ node: String, _ command: String) throws -> (status: Int32, stdout: String, stderr: String) {
            try NodeFixture.run("/usr/bin/ssh", ["-F", config.path, "-J", "alice@127.0.0.1:\(proxyPort)", "\(NodeFixture.login)@\(node)", command])
        }
        let through = try jump("node-test", "echo via-proxy; exit 4")
        XCTAssertEqual(through.status, 4, through.stderr)
        XCTAssertEqual(through.stdout, "via-proxy\n")
        let exec = try await fixture.events("exec")
        XCTAssertEqual(exec.first?.fields["command"]?.stringValue, "echo via-proxy; exit 4", "the node recorded the session")

        // Interactive through the jump: a terminal on the node, recorded there.
        let interactive = try NodeFixture.run("/usr/bin/ssh", ["-tt", "-F", config.path, "-J", "alice@127.0.0.1:\(proxyPort)", "\(NodeFixture.login)@node-test"],
                                              input: Data("tty; echo JUMP-$((6*7))\nexit 2\n".utf8))
        XCTAssertEqual(interactive.status, 2, interactive.stderr)
        XCTAssertTrue(interactive.stdout.contains("/dev/pts/") && interactive.stdout.contains("JUMP-42"), interactive.stdout)
        let shellEnd = try await XCTUnwrapAsync(try await fixture.event("session.end") { $0.fields["interactive"] == true })
        let cast = String(decoding: try await fixture.recordings.asciicast(try XCTUnwrap(shellEnd.fields["sid"]?.stringValue)), as: UTF8.self)
        XCTAssertTrue(cast.contains("JUMP-42"))

        let hidden = try jump("prod-db", "echo should-not-run")
        XCTAssertEqual(hidden.status, 255)
        XCTAssertTrue(hidden.stderr.contains("no node \"prod-db\" that you may reach"), hidden.stderr)
        let unknown = try jump("nowhere", "true")
        XCTAssertTrue(unknown.stderr.contains("no node \"nowhere\" that you may reach"), "the same answer: \(unknown.stderr)")

        // max_connections 2, 20 at once through the proxy: exactly 2 get in (the hop does not count,
        // the node connection does, once), 18 are told why.
        let clients = try (0..<20).map { index in
            try ChildProcess("/usr/bin/ssh", ["-F", config.path, "-J", "alice@127.0.0.1:\(proxyPort)", "\(NodeFixture.login)@node-test", "echo in; sleep 3"],
                             output: fixture.directory.appendingPathComponent("jump-\(index).log"))
        }
        let statuses = clients.map { $0.wait(timeout: 60) }
        XCTAssertEqual(statuses.filter { $0 == 0 }.count, 2, "\(statuses)")
        let refused = clients.filter { $0.exitStatus == 255 }
        XCTAssertEqual(refused.count, 18)
        for client in refused {
            XCTAssertTrue(client.output.contains("too many concurrent ssh connections for user \"alice\" (max=2)"), client.output)
        }
        let rejected = try await fixture.events("session.rejected", atLeast: 18)
        XCTAssertEqual(rejected.filter { $0.fields["max"] == .integer(2) }.count, 18)

        // After one closes, the next gets in within a second.
        let held = try (0..<2).map { _ in
            try ChildProcess("/usr/bin/ssh", ["-F", config.path, "-J", "alice@127.0.0.1:\(proxyPort)", "\(NodeFixture.login)@node-test", "sleep 30"])
        }
        let deadline = Date().addingTimeInterval(10)
        while fixture.node.registry.list().count < 2 && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        XCTAssertEqual(try jump("node-test", "echo third").status, 255)
        held[0].stop()
        let closed = Date()
        while fixture.node.registry.list().count > 1 && Date().timeIntervalSince(closed) < 1 { try await Task.sleep(for: .milliseconds(20)) }
        let next = try jump("node-test", "echo next")
        XCTAssertEqual(next.stdout, "next\n", next.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(closed), 1.5, "in within a second of the close, plus its own two handshakes")
        held[1].stop()
    }
}

extension NodeFixture {
    /// A node fixture and a proxy on the same cluster state (its lock watcher running), closed
    /// after `body` whatever it throws.
    static func withProxy(hostCertificateTTL: Duration = .seconds(7 * 24 * 3600), recordingsRoot: String? = nil,
                          sessionControlTimeout: Duration = .seconds(120),
                          _ body: (NodeFixture, ProxyService, Int) async throws -> Void) async throws {
        let fixture = try await NodeFixture()
        let proxy = ProxyService(settings: ProxyService.Settings(host: "127.0.0.1", port: 0, name: "proxy-test", hostCertificateTTL: hostCertificateTTL),
                                 identity: fixture.identity,
                                 audit: fixture.audit, backend: fixture.backend, keyring: fixture.keyring, crypto: fixture.crypto,
                                 recordingsRoot: recordingsRoot ?? fixture.recordingsRoot, sessionControlTimeout: sessionControlTimeout,
                                 logger: .init(label: "test.proxy"))
        let listener = try await proxy.bind()
        let watcher = Task { await proxy.watchLocks() }
        do {
            try await body(fixture, proxy, listener.localAddress!.port!)
        } catch {
            watcher.cancel()
            try? await listener.close()
            await fixture.close()
            throw error
        }
        watcher.cancel()
        try? await listener.close()
        await fixture.close()
    }
}
