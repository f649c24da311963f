import Audit
import FIPSCrypto
import Foundation
import Identity
import Logging
import NIOConcurrencyHelpers
import NIOPosix
@testable import SessionControl
@testable import SSH
import TestSupport
import XCTest

/// Admission on its own: fake locks, limits and event sink, a connection with no socket behind
/// it, no store, no root.
final class SessionControllerTests: XCTestCase {
    let locks = FakeLocks()
    let limiter = FakeLimiter()
    let sink = FakeSink()
    var controller: SessionController!
    let loop = MultiThreadedEventLoopGroup.singleton.next()

    override func setUp() async throws {
        controller = SessionController(locks: locks, limiter: limiter, emitter: AuditEmitter(sink, logger: Logger(label: "test")),
                                       policy: SessionPolicy(clientIdleTimeout: nil))
    }

    /// A connection whose DISCONNECT closes it, as the engine's does; `ended` gets the reason.
    func connection(ended: NIOLockedValueBox<String?>) -> SSHConnectionControl {
        var control: SSHConnectionControl!
        control = SSHConnectionControl(eventLoop: loop, remoteAddress: try? .init(ipAddress: "192.0.2.7", port: 50000), localAddress: nil) { error in
            ended.withLockedValue { $0 = error.message }
            control.closed()
        }
        return control
    }

    func request(maxConnections: Int = 1) throws -> AdmissionRequest {
        var options = RoleOptions()
        options.maxConnections = maxConnections
        let role = Role(name: "dev", options: options, allow: RoleConditions(logins: ["ubuntu"], nodeLabels: ["*": ["*"]]))
        let crypto = try CryptoContext(mode: .nonFIPS)
        let key = try PrivateKey(generate: .ecdsaP256, using: crypto)
        let now = UInt64(Date().timeIntervalSince1970)
        let certificate = try SSHCertificate.issue(for: key.publicKey, kind: .user, keyID: "alice", principals: ["ubuntu"], serial: 1,
                                                   validAfter: now - 60, validBefore: now + 3600, signedBy: key, using: crypto)
        let identity = AdmittedIdentity(user: "alice", login: "ubuntu", certificate: certificate,
                                        access: AccessChecker(user: "alice", roles: [role], traits: [:]), remoteAddress: "192.0.2.7:50000", localAddress: "")
        return AdmissionRequest(identity: identity, server: SessionServer(id: "web1", hostname: "web1"), holder: "test")
    }

    /// The reference gateway subscribes to its lock watcher before it checks: a lock made while
    /// the locks are being read still ends the connection being admitted.
    func testALockCreatedWhileAConnectionIsAdmittedEndsIt() async throws {
        let lock = Identity.Lock(name: "incident", target: .init(user: "alice"), message: "stop", createdBy: "admin")
        let connections = controller.connections
        locks.reading = {
            // The lock arrives through the watcher after the read took its snapshot.
            connections.enforce(lock)
            try? await Task.sleep(for: .milliseconds(100))
        }
        let ended = NIOLockedValueBox<String?>(nil)
        let result = await controller.admit(try request(), on: connection(ended: ended))
        XCTAssertNil(try? result.get(), "not admitted: the lock ended it while it was being admitted")
        XCTAssertEqual(ended.withLockedValue { $0 }, lock.refusal)
        XCTAssertTrue(limiter.held.withLockedValue { $0.allSatisfy { $0.released.withLockedValue { $0 } } }, "no place kept")
        XCTAssertEqual(connections.count, 0)
    }

    func testARefusalIsOneSessionRejectedEventWithTheConnectionsFields() async throws {
        locks.list.withLockedValue { $0 = [Identity.Lock(name: "l", target: .init(user: "alice"), createdBy: "admin")] }
        let locked = await controller.admit(try request(), on: connection(ended: .init(nil)))
        guard case .failure(let refusal) = locked else { return XCTFail("admitted despite the lock") }
        XCTAssertEqual(refusal.tellClient, "access denied: locked (user=alice)")
        locks.list.withLockedValue { $0 = [] }
        let first = await controller.admit(try request(), on: connection(ended: .init(nil)))
        XCTAssertNotNil(try? first.get())
        let second = await controller.admit(try request(), on: connection(ended: .init(nil)))
        guard case .failure(let limited) = second else { return XCTFail("max_connections 1 admitted two") }
        XCTAssertEqual(limited.tellClient, "too many concurrent ssh connections for user \"alice\" (max=1)")
        try await waitUntil(timeout: 5) { self.sink.events.withLockedValue { $0.count } == 3 }
        let all = sink.events.withLockedValue { $0 }
        XCTAssertEqual(all.map(\.event).sorted(), ["connection.start", "session.rejected", "session.rejected"], "the admitted one started")
        let events = all.filter { $0.event == "session.rejected" }
        for event in events {
            XCTAssertEqual(Set(event.fields.keys), ["event", "code", "uid", "time", "user", "login", "server_id", "server_hostname",
                                                    "addr.remote", "addr.local", "reason", "max"])
            XCTAssertEqual(event.fields["addr.remote"]?.stringValue, "192.0.2.7:50000")
        }
        XCTAssertEqual(events.last?.fields["max"], .integer(1))
    }

    func testALostLeaseEndsTheConnectionWithItsMessageAndAnEvent() async throws {
        let ended = NIOLockedValueBox<String?>(nil)
        let admitted = await controller.admit(try request(), on: connection(ended: ended))
        let connection = try admitted.get()
        let told = NIOLockedValueBox<[String]>([])
        final class Session: ControlledSession, @unchecked Sendable {
            let told: NIOLockedValueBox<[String]>
            init(_ told: NIOLockedValueBox<[String]>) { self.told = told }
            func tell(_ message: String) { told.withLockedValue { $0.append(message) } }
        }
        let session = Session(told)
        try await loop.submit { connection.added(session) }.get()
        let lease = try XCTUnwrap(limiter.held.withLockedValue { $0.first })
        lease.lost.withLockedValue { $0 }?("the connection limit's lease was dropped")
        try await waitUntil(timeout: 5) { ended.withLockedValue { $0 } != nil }
        XCTAssertEqual(ended.withLockedValue { $0 }, "the connection limit's lease was dropped")
        XCTAssertEqual(told.withLockedValue { $0 }, ["the connection limit's lease was dropped"])
        // Its life as AC-10 evidence: admitted, then ended because the lease was lost.
        try await waitUntil(timeout: 5) { self.sink.events.withLockedValue { $0.contains { $0.event == "connection.end" } } }
        let life = sink.events.withLockedValue { $0 }.filter { $0.event.hasPrefix("connection.") }
        XCTAssertEqual(life.map(\.event), ["connection.start", "connection.end"])
        XCTAssertEqual(life.last?.fields["cause"]?.stringValue, "lease_lost")
        XCTAssertEqual(life.first?.fields["connection"], life.last?.fields["connection"])
        XCTAssertEqual(life.first?.fields["max"], .integer(1))
        XCTAssertEqual(life.first?.fields["roles"], .array(["dev"]))
        try await waitUntil(timeout: 5) { lease.released.withLockedValue { $0 } }
        try await waitUntil(timeout: 5) { self.sink.events.withLockedValue { $0.contains { $0.event == "client.disconnect" } } }
        withExtendedLifetime(session) {}
    }

    func testAFailedAuditWriteIsCountedNotSwallowed() async throws {
        sink.failing.withLockedValue { $0 = true }
        let emitter = controller.emitter
        let events = emitter.ordered()
        events.emit(AuditEvent(.sessionRejected))
        events.emit(AuditEvent(.clientDisconnect))
        await events.flushed()
        XCTAssertEqual(emitter.failures, 2)
    }

    /// A jump tunnel at the proxy is held to user and role locks only: a lock on a node (here one
    /// that shares the proxy's name, as both default to the host name) or a login is the node's
    /// to apply, and a failed lock view at the proxy leaves tunnels to the nodes' own views.
    func testAJumpTunnelIsHeldToUserAndRoleLocksOnly() async throws {
        var jump = try request()
        jump.controlled = false
        jump.server = SessionServer(id: "web1", hostname: "web1")
        locks.list.withLockedValue { $0 = [Identity.Lock(name: "maintenance", target: .init(node: "web1"), createdBy: "admin"),
                                           Identity.Lock(name: "login", target: .init(login: "ubuntu"), createdBy: "admin")] }
        let ended = NIOLockedValueBox<String?>(nil)
        let admitted = await controller.admit(jump, on: connection(ended: ended))
        XCTAssertNotNil(try? admitted.get(), "a node lock does not stop tunnels through the proxy")
        controller.connections.enforce(Identity.Lock(name: "later", target: .init(node: "web1"), createdBy: "admin"))
        controller.connections.endStrict(reason: "preventive lock-out")
        try await loop.submit {}.get()
        XCTAssertNil(ended.withLockedValue { $0 })
        XCTAssertTrue(limiter.held.withLockedValue { $0.isEmpty }, "no max_connections place for a tunnel")

        controller.connections.enforce(Identity.Lock(name: "user", target: .init(user: "alice"), message: "incident", createdBy: "admin"))
        try await waitUntil(timeout: 5) { ended.withLockedValue { $0 } != nil }
        XCTAssertEqual(ended.withLockedValue { $0 }, "access denied: locked (user=alice): incident")

        // The same node lock refuses a controlled connection to that node.
        let refused = await controller.admit(try request(), on: connection(ended: .init(nil)))
        XCTAssertNil(try? refused.get())
    }
}
