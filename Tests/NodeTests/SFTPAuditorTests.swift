import Audit
import NIOCore
@testable import Node
import XCTest

/// The sftp watcher reads bytes a client controls: any split, any garbage, no crash, no
/// unbounded state, and the same events however the bytes arrive.
final class SFTPAuditorTests: XCTestCase {
    private func packet(_ type: UInt8, _ body: (inout ByteBuffer) -> Void) -> ByteBuffer {
        var content = ByteBuffer()
        content.writeInteger(type)
        body(&content)
        var framed = ByteBuffer()
        framed.writeInteger(UInt32(content.readableBytes))
        framed.writeBuffer(&content)
        return framed
    }

    private func string(_ text: String, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(text.utf8.count))
        buffer.writeString(text)
    }

    func testEventsAreTheSameWhateverTheSplit() {
        let request = packet(18) { $0.writeInteger(UInt32(7)); string("a.txt", into: &$0); string("b.txt", into: &$0) }
        let status = packet(101) { $0.writeInteger(UInt32(7)); $0.writeInteger(UInt32(0)); string("", into: &$0); string("", into: &$0) }
        for chunk in [1, 3, 1000] {
            var events: [(AuditEventKind, [String: AuditValue])] = []
            let auditor = SFTPAuditor { events.append(($0, $1)) }
            var client = request
            while client.readableBytes > 0 { auditor.clientSent(client.readSlice(length: min(chunk, client.readableBytes))!) }
            var server = status
            while server.readableBytes > 0 { auditor.serverSent(server.readSlice(length: min(chunk, server.readableBytes))!) }
            XCTAssertEqual(events.count, 1, "split \(chunk)")
            XCTAssertEqual(events.first?.0, AuditEventKind("sftp", "TS016I"))
            XCTAssertEqual(events.first?.1["path"]?.stringValue, "a.txt")
            XCTAssertEqual(events.first?.1["target_path"]?.stringValue, "b.txt")
        }
    }

    func testGarbageAndHostileLengthsAreHarmless() {
        var events = 0
        let auditor = SFTPAuditor { _, _ in events += 1 }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var buffer = ByteBuffer()
            for _ in 0..<Int.random(in: 0...64, using: &generator) { buffer.writeInteger(UInt8.random(in: 0...255, using: &generator)) }
            auditor.clientSent(buffer)
            auditor.serverSent(buffer)
        }
        XCTAssertLessThanOrEqual(events, 2000, "at most one event per answered request")

        // A length no peer sends: the watcher stops rather than buffer or misread.
        var hostileEvents = 0
        let hostile = SFTPAuditor { _, _ in hostileEvents += 1 }
        var huge = ByteBuffer()
        huge.writeInteger(UInt32.max)
        huge.writeInteger(UInt8(13))
        hostile.clientSent(huge)
        hostile.clientSent(packet(13) { $0.writeInteger(UInt32(1)); string("x", into: &$0) })
        hostile.serverSent(packet(101) { $0.writeInteger(UInt32(1)); $0.writeInteger(UInt32(0)) })
        XCTAssertEqual(hostileEvents, 0, "nothing is read after a length the protocol never produces")
    }
}
