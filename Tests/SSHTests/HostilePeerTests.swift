import FIPSCrypto
import Foundation
import NIOCore
import NIOPosix
import SSH
import TestSupport
import XCTest

/// A peer that does not follow the protocol gets a clean disconnect with a reason and a log line:
/// no crash, no hang, nothing buffered without bound.
final class HostilePeerTests: XCTestCase {
    private var server: Channel!
    private var port = 0
    private let log = LogCapture()
    private var crypto: CryptoContext!

    struct NobodyAllowed: SSHServerAuthenticator {
        func decide(_ offer: PublicKeyOffer) -> AuthenticationDecision { .reject("nobody") }
    }

    override func setUp() async throws {
        crypto = try TestEnvironment.fipsContext()
        let configuration = SSHServerConfiguration(crypto: crypto, hostKeys: [try PrivateKey(generate: .ecdsaP256, using: crypto)],
                                                   authenticator: NobodyAllowed(), authenticationTimeout: .seconds(2),
                                                   logger: log.logger("portcullis.ssh"))
        server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(SSHServerHandler(configuration: configuration)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = server.localAddress!.port!
    }

    override func tearDown() async throws { try? await server?.close() }

    /// Sends `bytes`, then reads until the server closes (at most `timeout`). Returns what it sent.
    private func exchange(_ bytes: [UInt8], timeout: TimeInterval = 5) throws -> (received: [UInt8], closed: Bool) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        XCTAssertEqual(connected, 0)
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        if !bytes.isEmpty { _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n > 0 { received += chunk.prefix(n); continue }
            // A close with our unread bytes still queued arrives as a reset: closed all the same.
            return (received, n == 0 || errno == ECONNRESET)
        }
    }

    private func plaintextPacket(_ payload: [UInt8]) -> [UInt8] {
        var padding = 8 - (5 + payload.count) % 8
        if padding < 4 { padding += 8 }
        let length = UInt32(1 + payload.count + padding)
        return withUnsafeBytes(of: length.bigEndian, Array.init) + [UInt8(padding)] + payload + [UInt8](repeating: 0, count: padding)
    }

    private func string(_ text: String) -> [UInt8] { string(Array(text.utf8)) }
    private func string(_ bytes: [UInt8]) -> [UInt8] { withUnsafeBytes(of: UInt32(bytes.count).bigEndian, Array.init) + bytes }

    private func kexInit(kex: String, cipher: String = "aes128-gcm@openssh.com", hostKey: String = "ecdsa-sha2-nistp256") -> [UInt8] {
        var payload: [UInt8] = [20] + [UInt8](repeating: 7, count: 16)
        for list in [kex, hostKey, cipher, cipher, "hmac-sha2-256", "hmac-sha2-256", "none", "none", "", ""] { payload += string(list) }
        return payload + [0, 0, 0, 0, 0]
    }

    /// The DISCONNECT the server sent in plaintext (before keys): reason code and description.
    private func disconnect(in received: [UInt8]) -> (code: UInt32, message: String)? {
        guard let newline = received.firstIndex(of: 0x0a) else { return nil }
        var rest = Array(received[(newline + 1)...])
        while rest.count >= 6 {
            let length = Int(rest[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            guard rest.count >= 4 + length else { return nil }
            let padding = Int(rest[4])
            let payload = Array(rest[5..<(4 + length - padding)])
            if payload.first == 1, payload.count >= 9 {
                let code = payload[1..<5].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                let textLength = Int(payload[5..<9].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
                return (code, String(decoding: payload[9..<min(payload.count, 9 + textLength)], as: UTF8.self))
            }
            rest = Array(rest[(4 + length)...])
        }
        return nil
    }

    private let version = Array("SSH-2.0-Hostile_1.0\r\n".utf8)

    func testNotSSHIsClosedWithALogLine() throws {
        let result = try exchange(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        XCTAssertTrue(result.closed)
        XCTAssertTrue(String(decoding: result.received, as: UTF8.self).hasPrefix("SSH-2.0-Portcullis"))
        XCTAssertFalse(log.messages(containing: "not an SSH-2.0 peer").isEmpty, "\(log.all.map(\.message))")
    }

    func testEndlessVersionLineIsCut() throws {
        let result = try exchange([UInt8](repeating: 0x41, count: 100_000))
        XCTAssertTrue(result.closed)
        XCTAssertFalse(log.messages(containing: "no SSH version line").isEmpty, "\(log.all.map(\.message))")
    }

    func testOversizedPacketIsRefusedWithReason() throws {
        let result = try exchange(version + [0x7f, 0xff, 0xff, 0xff] + [UInt8](repeating: 0, count: 64))
        XCTAssertTrue(result.closed)
        let reason = try XCTUnwrap(disconnect(in: result.received))
        XCTAssertEqual(reason.code, 2)
        XCTAssertTrue(reason.message.contains("out of bounds"), reason.message)
    }

    func testOnlyNonApprovedAlgorithmsGetsDisconnectNamingTheLists() throws {
        let result = try exchange(version + plaintextPacket(kexInit(kex: "curve25519-sha256,diffie-hellman-group1-sha1")))
        XCTAssertTrue(result.closed)
        let reason = try XCTUnwrap(disconnect(in: result.received))
        XCTAssertEqual(reason.code, 3)
        XCTAssertTrue(reason.message.contains("client offers: curve25519-sha256,diffie-hellman-group1-sha1"), reason.message)
        XCTAssertTrue(reason.message.contains("server allows: ecdh-sha2-nistp256,ecdh-sha2-nistp384"), reason.message)

        let cipher = try exchange(version + plaintextPacket(kexInit(kex: "ecdh-sha2-nistp256", cipher: "chacha20-poly1305@openssh.com")))
        XCTAssertTrue(try XCTUnwrap(disconnect(in: cipher.received)).message.contains("aes128-gcm@openssh.com"))
    }

    func testTruncatedKexInitIsMalformed() throws {
        let result = try exchange(version + plaintextPacket(Array(kexInit(kex: "ecdh-sha2-nistp256").prefix(30))))
        XCTAssertTrue(result.closed)
        XCTAssertEqual(try XCTUnwrap(disconnect(in: result.received)).message, "malformed KEXINIT")
    }

    /// Strict KEX: nothing but key exchange before the first NEWKEYS, from a client that asked for it.
    func testMessageInTheWrongStateIsRefused() throws {
        let strict = kexInit(kex: "ecdh-sha2-nistp256,kex-strict-c-v00@openssh.com")
        let userauth: [UInt8] = [50] + string("root") + string("ssh-connection") + string("none")
        let result = try exchange(version + plaintextPacket(strict) + plaintextPacket(userauth))
        XCTAssertTrue(result.closed)
        XCTAssertTrue(try XCTUnwrap(disconnect(in: result.received)).message.contains("not allowed during the initial key exchange"))
        // Terrapin: an IGNORE injected before a strict client's KEXINIT is refused…
        let ignoreFirst = try exchange(version + plaintextPacket([2] + string("x")) + plaintextPacket(strict))
        XCTAssertTrue(ignoreFirst.closed)
        XCTAssertTrue(try XCTUnwrap(disconnect(in: ignoreFirst.received)).message.contains("KEXINIT was not the first packet"))
        // …while a client that did not ask for strict KEX may send one (RFC 4253 allows it).
        let lenient = try exchange(version + plaintextPacket([2] + string("x")) + plaintextPacket(kexInit(kex: "ecdh-sha2-nistp256")), timeout: 1)
        XCTAssertNil(disconnect(in: lenient.received), "no disconnect for a non-strict client's IGNORE")
    }

    func testSilentClientIsDisconnectedAtTheAuthenticationTimeout() throws {
        let started = Date()
        let result = try exchange(version, timeout: 10)
        XCTAssertTrue(result.closed)
        XCTAssertLessThan(Date().timeIntervalSince(started), 8)
        XCTAssertFalse(log.messages(containing: "authentication timed out").isEmpty, "\(log.all.map(\.message))")
    }

    func testGarbageAfterVersionNeverCrashesTheServer() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<30 {
            let garbage = (0..<Int.random(in: 1...2000, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let result = try exchange(version + garbage, timeout: 5)
            XCTAssertTrue(result.closed)
        }
        // Still serving: a well-formed version exchange gets our version line.
        XCTAssertTrue(String(decoding: try exchange(version, timeout: 3).received, as: UTF8.self).hasPrefix("SSH-2.0-Portcullis"))
    }
}
