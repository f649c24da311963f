import Foundation
import Identity
@testable import Node
@testable import Proxy
import SessionControl
import SSH
import TestSupport
import XCTest

/// The names hosts are known by: a node's or proxy's certificate names only what the cluster
/// registered, and the `@cert-authority` line `pcsh login` writes trusts the host CA only for the
/// cluster's names and the proxy's address, so neither can answer for an arbitrary host.
final class HostNamesTests: NodeTestCase {
    func testANodesCertificateNamesItsRegisteredNamesAndNotLocalhost() async throws {
        XCTAssertEqual(Set(fixture.node.hostPrincipals), ["node-test", "node-test.test", HostIdentity.hostName.lowercased(), "127.0.0.1"])
        let wildcard = HostIdentity.principals(name: "web1", cluster: "prod", listenHost: "0.0.0.0", publicAddress: "web1.example.com:3022")
        XCTAssertEqual(wildcard, ["web1", "web1.prod", HostIdentity.hostName.lowercased(), "web1.example.com"])

        // Even with the host CA trusted for every name, ssh refuses the node as "localhost".
        try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice")
        let options = try await fixture.sshOptions(key: key)
        let asLocalhost = try NodeFixture.run("/usr/bin/ssh", options + ["\(NodeFixture.login)@localhost", "echo in"])
        XCTAssertEqual(asLocalhost.status, 255, asLocalhost.stdout)
        XCTAssertTrue(asLocalhost.stderr.contains("Host key verification failed"), asLocalhost.stderr)
    }

    func testTheLoginsKnownHostsLineTrustsOnlyTheClustersNames() async throws {
        try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice")
        let patterns = ClusterHostNames.knownHostPatterns(cluster: "test", proxySSHAddress: "proxy.example.com:3023")
        XCTAssertEqual(patterns, ["test", "*.test", "[test]:*", "[*.test]:*", "[proxy.example.com]:3023"])
        XCTAssertEqual(ClusterHostNames.knownHostPatterns(cluster: "test", proxySSHAddress: "[::1]:22").last, "::1")
        let knownHosts = fixture.directory.appendingPathComponent("cluster_known_hosts").path
        try (CertificateAuthority.knownHostsLines(try await fixture.identity.hostCA.trustedKeys(), patterns: patterns).joined(separator: "\n") + "\n")
            .write(toFile: knownHosts, atomically: true, encoding: .utf8)
        func ssh(as alias: String) async throws -> (status: Int32, stdout: String, stderr: String) {
            // Before the fixture's options: ssh keeps the first value it is given for an option.
            try NodeFixture.run("/usr/bin/ssh", ["-o", "UserKnownHostsFile=\(knownHosts)", "-o", "HostKeyAlias=\(alias)"]
                + (try await fixture.sshOptions(key: key)) + ["\(NodeFixture.login)@127.0.0.1", "echo in"])
        }
        let qualified = try await ssh(as: "node-test.test")
        XCTAssertEqual(qualified.stdout, "in\n", qualified.stderr)
        // A name outside the cluster is not covered by the line, whatever the certificate says.
        let outside = try await ssh(as: "node-test")
        XCTAssertEqual(outside.status, 255, outside.stdout)
        XCTAssertTrue(outside.stderr.contains("Host key verification failed"), outside.stderr)
    }
}
