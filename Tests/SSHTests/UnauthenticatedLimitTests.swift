import FIPSCrypto
import Foundation
import NIOCore
import NIOPosix
@testable import SSH
import TestSupport
import XCTest

/// Connections that have not authenticated are capped in all and per source address (sshd's
/// MaxStartups): one host cannot hold every key exchange and timer the server has.
final class UnauthenticatedLimitTests: XCTestCase {
    struct NobodyAllowed: SSHServerAuthenticator {
        func decide(_ offer: PublicKeyOffer) -> AuthenticationDecision { .reject("nobody") }
    }

    func testConnectionsOverTheCapsAreClosedBeforeTheVersionExchangeAndPlacesComeBack() async throws {
        let crypto = try TestEnvironment.fipsContext()
        let limit = UnauthenticatedLimit(total: 5, perSource: 3)
        let configuration = SSHServerConfiguration(crypto: crypto, hostKeys: [try PrivateKey(generate: .ecdsaP256, using: crypto)],
                                                   authenticator: NobodyAllowed(), authenticationTimeout: .seconds(30),
                                                   unauthenticatedLimit: limit)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(SSHServerHandler(configuration: configuration)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = server.localAddress!.port!
        defer { try? server.close().wait() }

        var open: [Int32] = []
        defer { open.forEach { close($0) } }
        for _ in 0..<3 {
            let fd = try connect(from: "127.0.0.1", port: port)
            XCTAssertTrue(try greeting(fd).hasPrefix("SSH-2.0-"), "admitted")
            open.append(fd)
        }
        let fourth = try connect(from: "127.0.0.1", port: port)
        XCTAssertEqual(try greeting(fourth), "", "a fourth from one source is closed without a word")
        close(fourth)
        for _ in 0..<2 {
            let fd = try connect(from: "127.0.0.2", port: port)
            XCTAssertTrue(try greeting(fd).hasPrefix("SSH-2.0-"), "another source has places of its own")
            open.append(fd)
        }
        let overTotal = try connect(from: "127.0.0.2", port: port)
        XCTAssertEqual(try greeting(overTotal), "", "five in all is the cap")
        close(overTotal)

        close(open.removeFirst())
        try await waitUntil { limit.counts.total == 4 }
        let again = try connect(from: "127.0.0.1", port: port)
        XCTAssertTrue(try greeting(again).hasPrefix("SSH-2.0-"), "a place given back is used again")
        open.append(again)
        open.forEach { close($0) }
        open = []
        try await waitUntil { limit.counts.total == 0 && limit.counts.sources == 0 }
    }

    /// Refusals are logged as a count at most every 10 s, not a line each (a peer decides how many).
    func testRefusalsAreLoggedAsACountNotALineEach() {
        let limit = UnauthenticatedLimit(total: 1, perSource: 1)
        let start = NIODeadline.now()
        XCTAssertEqual(limit.noteRefusal(now: start), 1)
        for _ in 0..<100 { XCTAssertNil(limit.noteRefusal(now: start + .seconds(1))) }
        XCTAssertEqual(limit.noteRefusal(now: start + .seconds(11)), 101)
    }

    /// One IPv6 host has a whole /64 to pick addresses from: it counts as one source.
    func testIPv6SourcesAreCountedPerSlash64() throws {
        let a = try SocketAddress(ipAddress: "2001:db8:1:2::10", port: 1)
        let b = try SocketAddress(ipAddress: "2001:db8:1:2:ffff::1", port: 2)
        let other = try SocketAddress(ipAddress: "2001:db8:1:3::10", port: 1)
        XCTAssertEqual(UnauthenticatedLimit.source(a), UnauthenticatedLimit.source(b))
        XCTAssertNotEqual(UnauthenticatedLimit.source(a), UnauthenticatedLimit.source(other))
        XCTAssertEqual(UnauthenticatedLimit.source(try SocketAddress(ipAddress: "::ffff:192.0.2.7", port: 1)), "192.0.2.7")
        XCTAssertEqual(UnauthenticatedLimit.source(try SocketAddress(ipAddress: "192.0.2.7", port: 1)), "192.0.2.7")
    }

    private func connect(from source: String, port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        func call(_ name: String, _ address: String, _ port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) throws {
            var inet = sockaddr_in()
            inet.sin_family = sa_family_t(AF_INET)
            inet.sin_port = in_port_t(UInt16(port).bigEndian)
            inet.sin_addr.s_addr = inet_addr(address)
            let result = withUnsafePointer(to: &inet) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard result == 0 else { throw Programs.CommandFailed(output: "\(name) \(address): \(String(cString: strerror(errno)))") }
        }
        try call("bind", source, 0) { bind(fd, $0, $1) }
        try call("connect", "127.0.0.1", port) { Glibc.connect(fd, $0, $1) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// What the server says first: its version line, or nothing when it closes at once.
    private func greeting(_ fd: Int32) throws -> String {
        var chunk = [UInt8](repeating: 0, count: 256)
        let count = recv(fd, &chunk, chunk.count, 0)
        guard count >= 0 || errno == ECONNRESET else { throw Programs.CommandFailed(output: "no answer: \(String(cString: strerror(errno)))") }
        return String(decoding: chunk.prefix(max(0, count)), as: UTF8.self)
    }
}
