import Foundation
import Identity
import NIOCore
@testable import SessionControl
@testable import SSH
import XCTest

/// A connection's controls end to end through our SSH engine, in memory with time moved by hand
/// (`BackToBack`): what the user sees when the idle timeout, the certificate's expiry,
/// `max_sessions`, keepalives or admission end or refuse a connection. No socket, root or sleep;
/// the node's tests with OpenSSH prove the same against a real client.
final class ConnectionControlTests: XCTestCase {
    var server: ControlledServer!

    override func setUp() async throws {
        server = try ControlledServer()
    }

    override func tearDown() async throws {
        await server.finish()
    }

    /// Connects and checks the client got in.
    private func connect(certificate: SSHCertificate? = nil) async throws -> BackToBack {
        let link = try await server.connect(certificate: certificate)
        XCTAssertNoThrow(try XCTUnwrap(link.authenticated).get(), "\(server.logs.all.map(\.message))")
        return link
    }

    private func openSession(on link: BackToBack) async throws -> ClientSession {
        let session = ClientSession()
        try await link.openSession(session)
        XCTAssertNoThrow(try XCTUnwrap(session.opened).get())
        return session
    }

    func testAnIdleConnectionEndsAtTheRolesTimeoutAndTrafficPostponesIt() async throws {
        server.options.clientIdleTimeout = .after(.seconds(30))
        let link = try await connect()
        let session = try await openSession(on: link)
        try await link.advance(by: .seconds(29))
        try await link.onLoop { session.send("still here\n") }
        XCTAssertEqual(session.output, "still here\n")
        try await link.advance(by: .seconds(29))
        XCTAssertTrue(link.isConnected, "58 s in, but idle for only 29")

        try await link.advance(by: .seconds(2))
        XCTAssertFalse(link.isConnected)
        let failure = try await link.clientFailure
        XCTAssertEqual(failure?.message, "the peer disconnected: Client exceeded idle timeout of 30s")
        XCTAssertEqual(failure?.peerReason, .byApplication)
        XCTAssertEqual(session.errors, "Client exceeded idle timeout of 30s\r\n")
        XCTAssertTrue(session.closed)
        let disconnect = await server.events().first { $0.event == "client.disconnect" }
        XCTAssertEqual(disconnect?.fields["reason"]?.stringValue, "Client exceeded idle timeout of 30s")
    }

    func testAConnectionWithoutSessionsIsIdleToo() async throws {
        server.options.clientIdleTimeout = .after(.seconds(30))
        let link = try await connect()
        try await link.advance(by: .seconds(29))
        XCTAssertTrue(link.isConnected)
        try await link.advance(by: .seconds(1))
        XCTAssertFalse(link.isConnected)
        let failure = try await link.clientFailure
        XCTAssertEqual(failure?.message, "the peer disconnected: Client exceeded idle timeout of 30s")
    }

    func testTheCertificatesExpiryEndsTheConnection() async throws {
        let validBefore = UInt64(Date().timeIntervalSince1970) + 10
        let link = try await connect(certificate: try server.certificate(validBefore: validBefore))
        let session = try await openSession(on: link)
        try await link.advance(by: .seconds(8))
        XCTAssertTrue(link.isConnected, "the certificate is valid for 9 to 10 s more")

        try await link.advance(by: .seconds(3))
        XCTAssertFalse(link.isConnected)
        let expected = "client certificate expired at \(ControlledConnection.utc(Date(timeIntervalSince1970: Double(validBefore))))"
        let failure = try await link.clientFailure
        XCTAssertEqual(failure?.message, "the peer disconnected: \(expected)")
        XCTAssertEqual(session.errors, expected + "\r\n")
    }

    func testMaxSessionsRefusesASecondSessionUntilTheFirstCloses() async throws {
        server.options.maxSessions = 1
        let link = try await connect()
        let first = try await openSession(on: link)

        let second = ClientSession()
        try await link.openSession(second)
        guard case .failure(let refusal) = second.opened else { return XCTFail("max_sessions 1 opened two sessions") }
        XCTAssertEqual(refusal.message, "the server refused the channel (code 1): too many session channels for user \"alice\" (max=1)")
        XCTAssertTrue(link.isConnected, "a refused channel leaves the connection open")
        let rejected = await server.events().filter { $0.event == "session.rejected" }
        XCTAssertEqual(rejected.map { $0.fields["reason"]?.stringValue }, ["max_sessions limit reached"])

        try await link.onLoop { first.close() }
        XCTAssertTrue(first.closed)
        _ = try await openSession(on: link)
    }

    /// A refused open holds no channel: a client repeating it would write an audit event each
    /// time. Past the limit the connection is ended, and the events stop there.
    func testSessionOpensRefusedInALoopEndTheConnection() async throws {
        server.options.maxSessions = 1
        let link = try await connect()
        _ = try await openSession(on: link)
        for _ in 0..<ControlledConnection.refusalLimit {
            let refused = ClientSession()
            try await link.openSession(refused)
            guard case .failure = refused.opened else { return XCTFail("max_sessions 1 opened another session") }
        }
        XCTAssertTrue(link.isConnected, "up to the limit, refusals leave the connection open")
        try await link.openSession(ClientSession())
        XCTAssertFalse(link.isConnected, "one more ends it")
        let events = await server.events()
        XCTAssertEqual(events.filter { $0.event == "session.rejected" }.count, ControlledConnection.refusalLimit)
        XCTAssertEqual(events.first { $0.event == "client.disconnect" }?.fields["reason"]?.stringValue?.contains("refused already"), true)
    }

    func testKeepalivesEndAConnectionWhosePeerStoppedAnswering() async throws {
        server.keepaliveInterval = .seconds(10)
        let link = try await connect()
        link.clientSilenced = true
        // Three keepalives (at 10, 20 and 30 s) go unanswered; the fourth is not sent.
        try await link.advance(by: .seconds(39))
        XCTAssertTrue(link.isConnected)
        try await link.advance(by: .seconds(1))
        XCTAssertFalse(link.isConnected)
        let failure = try await link.clientFailure
        XCTAssertEqual(failure?.message, "the peer disconnected: the client did not answer 3 keepalives in a row; assuming it is gone")
    }

    func testKeepalivesKeepAConnectionWhosePeerAnswers() async throws {
        server.keepaliveInterval = .seconds(10)
        let link = try await connect()
        let session = try await openSession(on: link)
        try await link.advance(by: .seconds(120))
        XCTAssertTrue(link.isConnected)
        try await link.onLoop { session.send("ping") }
        XCTAssertEqual(session.output, "ping")
    }

    func testALockedUserIsRefusedAtAuthenticationWithTheLocksMessage() async throws {
        server.locks.list.withLockedValue {
            $0 = [Identity.Lock(name: "incident-42", target: .init(user: "alice"), message: "under investigation", createdBy: "admin")]
        }
        let link = try await server.connect()
        XCTAssertThrowsError(try XCTUnwrap(link.authenticated).get())
        XCTAssertFalse(link.isConnected)
        let failure = try await link.clientFailure
        XCTAssertEqual(failure?.message, "the server refused the certificate 'alice' for user 'ubuntu' (it accepts: publickey)")
        XCTAssertEqual(server.banners, ["access denied: locked (user=alice): under investigation\r\n"])
    }

    func testAUserAtMaxConnectionsIsRefused() async throws {
        server.options.maxConnections = 1
        let first = try await connect()
        let second = try await server.connect(loop: first.loop)
        XCTAssertThrowsError(try XCTUnwrap(second.authenticated).get())
        XCTAssertFalse(second.isConnected)
        XCTAssertEqual(server.banners, ["too many concurrent ssh connections for user \"alice\" (max=1)\r\n"])
        XCTAssertTrue(first.isConnected, "the connection holding the place is untouched")
    }
}
