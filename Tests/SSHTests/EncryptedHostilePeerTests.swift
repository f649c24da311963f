import FIPSCrypto
import Foundation
import NIOCore
import NIOPosix
@testable import SSH
import SSHExampleServer
import TestSupport
import XCTest

/// Hostile peers past the key exchange: forged or replayed packets, broken flow control, floods,
/// malformed certificates. Each ends in a clean disconnect with a reason and a log line, or a
/// refusal that leaves the server serving.
final class EncryptedHostilePeerTests: XCTestCase {
    private var server: Channel!
    private var port = 0
    private let log = LogCapture()
    private var crypto: CryptoContext!
    private var userKey: PrivateKey!

    override func setUp() async throws {
        crypto = try TestEnvironment.fipsContext()
        userKey = try PrivateKey(generate: .ecdsaP256, using: crypto)
        server = try await ExampleServer.start(crypto: crypto, hostKeys: [try PrivateKey(generate: .ecdsaP256, using: crypto)],
                                               authenticator: AllowedKeys(users: ["alice": [userKey.publicKey.keyData]]),
                                               logger: log.logger("portcullis.ssh"))
        port = server.localAddress!.port!
    }

    override func tearDown() async throws { try? await server?.close() }

    private func disconnects(containing text: String) -> [LogCapture.Entry] {
        log.messages(containing: "disconnecting").filter { $0.message.contains(text) }
    }

    func testForgedPacketAfterNewKeysIsAMACError() async throws {
        let client = try await ScriptedClient.connect(port: port, crypto: crypto)
        var forged = ByteBufferAllocator().buffer(capacity: 52)
        forged.writeInteger(UInt32(32))
        forged.writeBytes(try crypto.randomBytes(32 + 16))
        try await client.writeRaw(forged)
        let end = try await client.waitForEnd()
        XCTAssertNotNil(end, "the server closed the connection")
        XCTAssertTrue(end?.contains("packet authentication failed") == true, end ?? "")
        XCTAssertFalse(disconnects(containing: "packet authentication failed").isEmpty, "\(log.all.map(\.message))")
    }

    /// A packet replayed after the keys are in use carries a stale sequence (GCM invocation
    /// counter): the server refuses it as forged.
    func testReplayedPacketIsRefused() async throws {
        let client = try await ScriptedClient.connect(port: port, crypto: crypto, key: userKey)
        let sent = try await client.written()
        try await client.writeRaw(try XCTUnwrap(sent.last))
        let end = try await client.waitForEnd()
        XCTAssertTrue(end?.contains("packet authentication failed") == true, end ?? "still connected")
    }

    private func openSession(_ client: ScriptedClient.Handle, id: UInt32 = 0) async throws {
        try await client.send(.message(.channelOpen) {
            $0.writeSSHString("session")
            $0.writeInteger(id)
            $0.writeInteger(UInt32(1 << 20))
            $0.writeInteger(UInt32(32768))
        })
    }

    private func replies(_ client: ScriptedClient.Handle, count: Int) async throws -> [ByteBuffer] {
        let deadline = Date().addingTimeInterval(10)
        while true {
            let messages = try await client.received().filter {
                [MessageNumber.channelOpenConfirmation.rawValue, MessageNumber.channelOpenFailure.rawValue].contains($0.getInteger(at: $0.readerIndex, as: UInt8.self))
            }
            if messages.count >= count || Date() > deadline { return messages }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// An authenticated client with session channel 0 open.
    private func clientWithSession() async throws -> ScriptedClient.Handle {
        let client = try await ScriptedClient.connect(port: port, crypto: crypto, key: userKey)
        try await openSession(client)
        let answers = try await replies(client, count: 1)
        XCTAssertEqual(answers.first?.getInteger(at: answers.first!.readerIndex, as: UInt8.self), MessageNumber.channelOpenConfirmation.rawValue)
        return client
    }

    func testWindowAdjustOverflowIsAProtocolError() async throws {
        let client = try await clientWithSession()
        try await client.send(.message(.channelWindowAdjust) {
            $0.writeInteger(UInt32(0))
            $0.writeInteger(UInt32.max)
        })
        let end = try await client.waitForEnd()
        XCTAssertTrue(end?.contains("window adjust overflows the channel window") == true, end ?? "still connected")
        XCTAssertFalse(disconnects(containing: "overflows").isEmpty)
    }

    func testDataBeyondTheMaximumPacketIsAProtocolError() async throws {
        let client = try await clientWithSession()
        try await client.send(.message(.channelData) {
            $0.writeInteger(UInt32(0))
            $0.writeSSHString([UInt8](repeating: 0x61, count: 40_000))
        })
        let end = try await client.waitForEnd()
        XCTAssertTrue(end?.contains("exceeds the window or the maximum packet size") == true, end ?? "still connected")
    }

    /// 1000 channel opens at once: 64 are served, the rest refused with the reason, and the
    /// connection keeps working.
    func testChannelOpenFloodIsCappedAndTheConnectionSurvives() async throws {
        let client = try await ScriptedClient.connect(port: port, crypto: crypto, key: userKey)
        for id in 0..<1000 { try await openSession(client, id: UInt32(id)) }
        let answers = try await replies(client, count: 1000)
        XCTAssertEqual(answers.count, 1000)
        let confirmed = answers.filter { $0.getInteger(at: $0.readerIndex, as: UInt8.self) == MessageNumber.channelOpenConfirmation.rawValue }
        XCTAssertEqual(confirmed.count, SSHConnectionLayer.maximumChannels)
        let refusal = try XCTUnwrap(answers.first { $0.getInteger(at: $0.readerIndex, as: UInt8.self) == MessageNumber.channelOpenFailure.rawValue })
        XCTAssertTrue(String(decoding: refusal.readableBytesView, as: UTF8.self).contains("too many channels on this connection (max 64)"))
        try await client.send(.message(.globalRequest) {
            $0.writeSSHString("keepalive@openssh.com")
            $0.writeSSHBool(true)
        })
        let deadline = Date().addingTimeInterval(5)
        var answered = false
        while !answered && Date() < deadline {
            answered = try await client.received().contains { $0.getInteger(at: $0.readerIndex, as: UInt8.self) == MessageNumber.requestFailure.rawValue }
            try await Task.sleep(for: .milliseconds(20))
        }
        XCTAssertTrue(answered, "the connection still answers after the flood")
        await client.close()
    }

    /// The admission hook sees how many channels the connection has and can refuse with its own
    /// message (what the node's `max_sessions` uses).
    func testChannelAdmissionLimitsSessionsWithItsMessage() async throws {
        try? await server.close()
        server = try await ExampleServer.start(
            crypto: crypto, hostKeys: [try PrivateKey(generate: .ecdsaP256, using: crypto)],
            authenticator: AllowedKeys(users: ["alice": [userKey.publicKey.keyData]]),
            channelAdmission: { context, opening in
                opening.openChannels >= 2 ? "too many session channels for user \"\(context.username)\" (max=2)" : nil
            },
            logger: log.logger("portcullis.ssh"))
        port = server.localAddress!.port!
        let client = try await ScriptedClient.connect(port: port, crypto: crypto, key: userKey)
        for id in 0..<3 { try await openSession(client, id: UInt32(id)) }
        let answers = try await replies(client, count: 3)
        let kinds = answers.map { $0.getInteger(at: $0.readerIndex, as: UInt8.self) }
        XCTAssertEqual(kinds, [91, 91, 92], "two confirmed, the third refused")
        XCTAssertTrue(String(decoding: answers[2].readableBytesView, as: UTF8.self).contains("too many session channels for user \"alice\" (max=2)"))
        await client.close()
    }

    /// A certificate that does not parse is refused with the reason logged; repeated, it costs
    /// the client its connection.
    func testMalformedCertificateInUserauthIsRefusedThenDisconnected() async throws {
        let client = try await ScriptedClient.connect(port: port, crypto: crypto)
        try await client.send(.message(.serviceRequest) { $0.writeSSHString("ssh-userauth") })
        var garbage = try crypto.randomBytes(300)
        garbage.replaceSubrange(0..<0, with: [0, 0, 0, 40] + Array("ecdsa-sha2-nistp256-cert-v01@openssh.com".utf8))
        for _ in 0..<UserAuthenticationServer.maximumAttempts {
            try await client.send(.message(.userAuthRequest) {
                $0.writeSSHString("alice")
                $0.writeSSHString("ssh-connection")
                $0.writeSSHString("publickey")
                $0.writeSSHBool(false)
                $0.writeSSHString("ecdsa-sha2-nistp256-cert-v01@openssh.com")
                $0.writeSSHString(garbage)
            })
        }
        let end = try await client.waitForEnd()
        XCTAssertTrue(end?.contains("too many authentication failures") == true, end ?? "still connected")
        let refusals = log.messages(containing: "authentication refused")
        XCTAssertEqual(refusals.count, UserAuthenticationServer.maximumAttempts)
        XCTAssertTrue(refusals.first?.metadata["reason"]?.contains("unusable ecdsa-sha2-nistp256-cert-v01@openssh.com key: malformed certificate") == true,
                      "\(refusals.first?.metadata ?? [:])")
    }

    /// Refused queries (keys offered without a signature) and repeated `none` requests count
    /// toward the attempt limit, as in OpenSSH; otherwise a client could try keys without end.
    func testRefusedQueriesAndRepeatedNoneCountAsAttempts() async throws {
        let client = try await ScriptedClient.connect(port: port, crypto: crypto)
        try await client.send(.message(.serviceRequest) { $0.writeSSHString("ssh-userauth") })
        let stranger = try PrivateKey(generate: .ecdsaP256, using: crypto).publicKey.sshWire
        for round in 0..<(2 * UserAuthenticationServer.maximumAttempts) {
            // The server may hang up before the last ones are sent: that is the point.
            do { try await client.send(.message(.userAuthRequest) {
                $0.writeSSHString("alice")
                $0.writeSSHString("ssh-connection")
                if round % 2 == 0 {
                    $0.writeSSHString("none")
                } else {
                    $0.writeSSHString("publickey")
                    $0.writeSSHBool(false)
                    $0.writeSSHString("ecdsa-sha2-nistp256")
                    $0.writeSSHString(stranger)
                }
            }) } catch { break }
        }
        let end = try await client.waitForEnd()
        XCTAssertTrue(end?.contains("too many authentication failures") == true, end ?? "still connected")
    }

    /// The user name is fixed by the first request (OpenSSH: "Change of username or service not allowed").
    func testTheUserNameCannotChangeBetweenRequests() async throws {
        let client = try await ScriptedClient.connect(port: port, crypto: crypto)
        try await client.send(.message(.serviceRequest) { $0.writeSSHString("ssh-userauth") })
        for user in ["alice", "root"] {
            try await client.send(.message(.userAuthRequest) {
                $0.writeSSHString(user)
                $0.writeSSHString("ssh-connection")
                $0.writeSSHString("none")
            })
        }
        let end = try await client.waitForEnd()
        XCTAssertTrue(end?.contains("change of user name not allowed") == true, end ?? "still connected")
    }
}
