import Audit
import Foundation
import NIOCore
import NIOPosix
@testable import SessionControl
import XCTest

/// The tap between a session's output and its recorder: bulk output reaches the recorder a MiB
/// an event, in order and whole, and an event never holds much more memory than its bytes — the
/// recorder keeps events as they are until their chunk is written, and the watermarks count bytes.
final class SessionRecordingTapTests: XCTestCase {
    /// What the tap hands over (the `Recorder` seam; the recorder's own tests write real files).
    private actor Collected: Recorder {
        var events: [RecordingEvent] = []
        var finished = false
        func record(_ event: RecordingEvent) async throws { events.append(event) }
        func finish() async throws { finished = true }
    }

    func testBulkOutputIsHandedOverAMiBAtATimeAndBurstsAfterItHoldOnlyTheirOwnSize() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let recorder = Collected()
        let tap = SessionRecordingTap(recorder: recorder, loop: loop, onHold: { _ in }, onFailure: { XCTFail("\($0)") })
        var sent: [UInt8] = []

        // A download: 3 MiB in pipe-sized reads, within one turn of the loop.
        let reads = (0..<48).map { n in [UInt8]((0..<(64 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ n) }) }
        for read in reads { sent += read }
        try await loop.submit { for read in reads { tap.output(ByteBuffer(bytes: read)) } }.get()
        // Then bursts of 20 KiB (a screen redraw), each alone.
        for n in 0..<10 {
            let burst = [UInt8](repeating: UInt8(n), count: 20 << 10)
            sent += burst
            try await loop.submit { tap.output(ByteBuffer(bytes: burst)) }.get()
            // Handed over on its own once the gathering's 5 ms pass, before the next burst.
            let deadline = ContinuousClock.now + .seconds(30)
            while await recorder.events.count < 3 + n + 1, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(2)) }
        }
        await tap.finish()

        let events = await recorder.events
        let finished = await recorder.finished
        XCTAssertTrue(finished)
        XCTAssertEqual(events.flatMap(\.data), sent, "every byte, in order")
        XCTAssertEqual(events.prefix(3).map(\.data.count), [1 << 20, 1 << 20, 1 << 20], "the download in MiB events")
        XCTAssertEqual(events.dropFirst(3).map(\.data.count), [Int](repeating: 20 << 10, count: 10), "each burst its own event")
        for (n, event) in events.enumerated() {
            XCTAssertLessThanOrEqual(event.data.capacity, 2 * event.data.count + 4096,
                                     "event \(n): \(event.data.count) bytes in memory for \(event.data.capacity)")
        }
        XCTAssertEqual(events.map(\.time), events.map(\.time).sorted(), "stamped in order")
    }
}
