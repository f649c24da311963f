import Foundation
@testable import Node
@testable import Proxy
import SessionControl
import TestSupport
import XCTest

/// The node's host certificate: what `ssh` checks against the host CA line `pcsh login` writes.
final class NodeHostCertificateTests: XCTestCase {
    override class func tearDown() { NodeFixture.removeLogin() }

    func testTheHostCertificateIsRenewedBeforeItExpires() async throws {
        try NodeFixture.requirements()
        let fixture = try await NodeFixture { $0.hostCertificateTTL = .seconds(4) }
        do {
            try await renewal(fixture)
        } catch {
            await fixture.close()
            throw error
        }
        await fixture.close()
    }

    private func renewal(_ fixture: NodeFixture) async throws {
        try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice")
        let began = Date()
        let first = try await fixture.ssh(key: key, "echo first")
        XCTAssertEqual(first.stdout, "first\n", first.stderr)

        // Not yet due: the same certificate stays.
        let before = fixture.listener.configuration.withLockedValue { $0.hostCertificates.first?.serial }
        try await fixture.node.renewHostCertificateIfDue(fixture.listener)
        XCTAssertEqual(fixture.listener.configuration.withLockedValue { $0.hostCertificates.first?.serial }, before)
        // Past half its life it is replaced, and a client checking it strictly still gets in after the first one expired.
        try await Task.sleep(for: .milliseconds(Int(max(0, 2.2 - Date().timeIntervalSince(began)) * 1000)))
        try await fixture.node.renewHostCertificateIfDue(fixture.listener)
        XCTAssertNotEqual(fixture.listener.configuration.withLockedValue { $0.hostCertificates.first?.serial }, before)
        try await Task.sleep(for: .milliseconds(Int(max(0, 5 - Date().timeIntervalSince(began)) * 1000)))
        let later = try await fixture.ssh(key: key, "echo later")
        XCTAssertEqual(later.stdout, "later\n", later.stderr)
        XCTAssertTrue(fixture.node.hostPrincipals.contains("node-test"))
        XCTAssertTrue(fixture.node.hostPrincipals.contains(HostIdentity.hostName.lowercased()))
    }

    func testTheProxysHostCertificateIsRenewedToo() async throws {
        try NodeFixture.requirements()
        try await NodeFixture.withProxy(hostCertificateTTL: .seconds(4)) { fixture, proxy, port in
            try await fixture.addUser("alice")
            let key = try await fixture.certifiedKey("alice")
            try await fixture.node.nodes.heartbeat(NodeRecord(name: "node-test", address: "127.0.0.1:\(fixture.port)", labels: ["env": "test"],
                                                              hostname: "h", version: "t", lastHeartbeat: Date()))
            let config = fixture.directory.appendingPathComponent("ssh_config")
            try "Host *\n  BatchMode yes\n  IdentitiesOnly yes\n  IdentityFile \(key)\n  UserKnownHostsFile \(try await fixture.knownHosts())\n  StrictHostKeyChecking yes\n"
                .write(to: config, atomically: true, encoding: .utf8)
            func jump() throws -> String {
                try NodeFixture.run("/usr/bin/ssh", ["-F", config.path, "-J", "alice@127.0.0.1:\(port)", "\(NodeFixture.login)@node-test", "echo ok"]).stdout
            }
            let began = Date()
            XCTAssertEqual(try jump(), "ok\n")
            try await Task.sleep(for: .milliseconds(Int(max(0, 2.2 - Date().timeIntervalSince(began)) * 1000)))
            try await proxy.renewHostCertificateIfDue()
            try await Task.sleep(for: .milliseconds(Int(max(0, 5 - Date().timeIntervalSince(began)) * 1000)))
            XCTAssertEqual(try jump(), "ok\n", "the proxy's first certificate expired; the renewed one is presented")
        }
    }
}
