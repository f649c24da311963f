import NIOCore
import NIOEmbedded
@testable import WebAPI
import XCTest

/// The HTTPS port's timeout in front of TLS: a connection on which nothing moves is closed; one
/// that only receives (a long download) is not.
final class ReadTimeoutHandlerTests: XCTestCase {
    func testASilentConnectionIsClosedAfterTheTimeout() throws {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(handler: ReadTimeoutHandler(timeout: .seconds(60)), loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        loop.advanceTime(by: .seconds(59))
        XCTAssertTrue(channel.isActive)
        loop.advanceTime(by: .seconds(2))
        XCTAssertFalse(channel.isActive, "closed once nothing moved for 60 s")
    }

    func testReadsAndWritesBothKeepItOpen() throws {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(handler: ReadTimeoutHandler(timeout: .seconds(60)), loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        // A download: the server writes every 30 s for five minutes, the client sends nothing.
        for _ in 0..<10 {
            loop.advanceTime(by: .seconds(30))
            try channel.writeOutbound(ByteBuffer(string: "chunk"))
            _ = try channel.readOutbound(as: ByteBuffer.self)
        }
        XCTAssertTrue(channel.isActive, "writing is activity")
        for _ in 0..<4 {
            loop.advanceTime(by: .seconds(45))
            try channel.writeInbound(ByteBuffer(string: "pong"))
            _ = try channel.readInbound(as: ByteBuffer.self)
        }
        XCTAssertTrue(channel.isActive, "reading is activity")
        loop.advanceTime(by: .seconds(61))
        XCTAssertFalse(channel.isActive)
    }
}
