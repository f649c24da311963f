import Foundation
@testable import Node
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
        XCTAssertTrue(fixture.node.hostPrincipals.contains(NodeSettings.hostName))
    }
}
