import Foundation
import NIOCore
import NIOEmbedded
@testable import WebAPI
import XCTest

/// The public listener's limits, with time given by hand.
final class WebLimitTests: XCTestCase {
    func testASourceGetsItsBurstThenOneRequestPerInterval() {
        let limiter = SourceRateLimiter(burst: 3, interval: 2, maximumSources: 100)
        let start = Date()
        for _ in 0..<3 { XCTAssertNil(limiter.admit("192.0.2.1", now: start)) }
        XCTAssertEqual(limiter.admit("192.0.2.1", now: start), 2, "the fourth waits a whole interval")
        XCTAssertNil(limiter.admit("192.0.2.2", now: start), "another address has its own bucket")
        XCTAssertEqual(limiter.admit("192.0.2.1", now: start.addingTimeInterval(1)), 1)
        XCTAssertNil(limiter.admit("192.0.2.1", now: start.addingTimeInterval(2)), "one token back after an interval")
        XCTAssertNotNil(limiter.admit("192.0.2.1", now: start.addingTimeInterval(2)))
    }

    func testTheTableOfSourcesIsBounded() {
        let limiter = SourceRateLimiter(burst: 2, interval: 10, maximumSources: 3)
        let now = Date()
        for source in ["a", "b", "c"] { XCTAssertNil(limiter.admit(source, now: now)) }
        // The table is full of sources still within their window: newcomers share one bucket.
        XCTAssertNil(limiter.admit("d", now: now))
        XCTAssertNil(limiter.admit("e", now: now))
        XCTAssertNotNil(limiter.admit("f", now: now), "new sources cannot each get a fresh burst while the table is full")
        // Once the old ones went quiet (buckets full again), they are forgotten and a newcomer gets its own.
        XCTAssertNil(limiter.admit("g", now: now.addingTimeInterval(60)))
        XCTAssertNil(limiter.admit("g", now: now.addingTimeInterval(60)))
    }

    func testConnectionsOverTheCapAreClosedAndPlacesComeBack() throws {
        let cap = ConnectionCap(total: 10, perSource: 2)
        func connect() throws -> EmbeddedChannel {
            let channel = EmbeddedChannel()
            try channel.connect(to: SocketAddress(ipAddress: "192.0.2.7", port: 443)).wait()
            try channel.pipeline.syncOperations.addHandler(cap.handler())
            return channel
        }
        let first = try connect(), second = try connect()
        let third = try connect()
        XCTAssertTrue(first.isActive && second.isActive)
        XCTAssertFalse(third.isActive, "a third connection from one address is closed at once")
        XCTAssertEqual(cap.open, 2)
        _ = try first.finish()
        XCTAssertEqual(cap.open, 1, "a closed connection gives its place back")
        let fourth = try connect()
        XCTAssertTrue(fourth.isActive)
        _ = try? second.finish()
        _ = try? fourth.finish()
        XCTAssertEqual(cap.open, 0)
    }
}
