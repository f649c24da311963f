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
        XCTAssertEqual(hostileEvents, 1, "nothing is read after a length the protocol never produces; the gap is told once")
    }

    // MARK: Every answered request, and gaps told

    private typealias Event = (kind: AuditEventKind, fields: [String: AuditValue])

    private func status(_ id: UInt32, _ code: UInt32 = 0, _ message: String = "") -> ByteBuffer {
        packet(101) { $0.writeInteger(id); $0.writeInteger(code); string(message, into: &$0); string("", into: &$0) }
    }

    private func extended(_ id: UInt32, _ name: String, _ body: (inout ByteBuffer) -> Void = { _ in }) -> ByteBuffer {
        packet(200) { $0.writeInteger(id); string(name, into: &$0); body(&$0) }
    }

    private func summary(_ events: [Event]) -> [String] {
        events.map { event in
            let target = event.fields["target_path"]?.stringValue.map { " -> \($0)" } ?? ""
            return "\(event.kind.code) \(event.fields["action"]?.stringValue ?? event.kind.name) \(event.fields["path"]?.stringValue ?? "")\(target)"
        }
    }

    func testAReusedIDHidesNoOperation() {
        var events: [Event] = []
        let auditor = SFTPAuditor { events.append(($0, $1)) }
        // Two requests with id 7 in flight, then a stat with id 9 and a remove reusing 9:
        // each answer is for the oldest unanswered request with its id.
        auditor.clientSent(packet(13) { $0.writeInteger(UInt32(7)); string("secret", into: &$0) })
        auditor.clientSent(packet(14) { $0.writeInteger(UInt32(7)); string("decoy", into: &$0) })
        auditor.clientSent(packet(17) { $0.writeInteger(UInt32(9)); string("x", into: &$0) })
        auditor.clientSent(packet(13) { $0.writeInteger(UInt32(9)); string("other", into: &$0) })
        auditor.serverSent(status(7))
        auditor.serverSent(status(7, 4, "Failure"))
        auditor.serverSent(packet(105) { $0.writeInteger(UInt32(9)); $0.writeInteger(UInt32(0)) })
        auditor.serverSent(status(9, 2, "No such file"))
        XCTAssertEqual(summary(events), ["TS011I remove secret", "TS012E mkdir decoy", "TS011E remove other"])
        XCTAssertEqual(events[1].fields["error"]?.stringValue, "Failure")
    }

    func testMoreRequestsInFlightThanTheBoundAreAGapNotSilence() {
        var events: [Event] = []
        let auditor = SFTPAuditor { events.append(($0, $1)) }
        let limit = SFTPAuditor.pendingLimit
        for id in 0..<UInt32(limit + 10) {
            auditor.clientSent(packet(14) { $0.writeInteger(id); string("dir\(id)", into: &$0) })
        }
        XCTAssertTrue(events.isEmpty)
        for id in 0..<UInt32(limit + 10) { auditor.serverSent(status(id)) }
        XCTAssertEqual(events.count, limit, "every kept request is reported once answered")
        XCTAssertEqual(summary(Array(events.prefix(2))), ["TS012I mkdir dir0", "TS012I mkdir dir1"])
        XCTAssertEqual(events.last?.fields["path"]?.stringValue, "dir\(limit - 1)", "the first requests were kept, none cleared")

        // The next request that is kept again closes the gap: one event with how many were not.
        auditor.clientSent(packet(15) { $0.writeInteger(UInt32(1)); string("after", into: &$0) })
        auditor.serverSent(status(1))
        XCTAssertEqual(events.count, limit + 2)
        XCTAssertEqual(events[limit].kind, .sftpAuditGap)
        XCTAssertEqual(events[limit].kind.code, "TSG00W")
        XCTAssertEqual(events[limit].fields["reason"]?.stringValue, "requests_in_flight")
        XCTAssertEqual(events[limit].fields["requests"], .integer(10))
        XCTAssertEqual(summary([events[limit + 1]]), ["TS013I rmdir after"])
    }

    func testAnUnkeptRequestsAnswerIsNotTakenForALaterOneWithItsID() {
        var events: [Event] = []
        let auditor = SFTPAuditor { events.append(($0, $1)) }
        let limit = UInt32(SFTPAuditor.pendingLimit)
        for id in 0..<limit { auditor.clientSent(packet(17) { $0.writeInteger(id); string("s", into: &$0) }) }
        auditor.clientSent(packet(13) { $0.writeInteger(limit); string("hidden", into: &$0) })  // not kept
        auditor.serverSent(packet(105) { $0.writeInteger(UInt32(0)); $0.writeInteger(UInt32(0)) })  // room again
        auditor.clientSent(packet(14) { $0.writeInteger(limit); string("shown", into: &$0) })  // kept, same id
        auditor.serverSent(status(limit, 4, "Failure"))  // the hidden remove's answer
        auditor.serverSent(status(limit))  // the mkdir's
        auditor.finish()
        XCTAssertEqual(events.map(\.kind.name), ["sftp.audit_gap", "sftp"])
        XCTAssertEqual(events.first?.fields["requests"], .integer(1))
        XCTAssertEqual(summary(Array(events.suffix(1))), ["TS012I mkdir shown"])
    }

    func testOpenSSHExtensionsAreAuditedWithTheirPaths() {
        var events: [Event] = []
        let auditor = SFTPAuditor { events.append(($0, $1)) }
        auditor.clientSent(packet(3) { $0.writeInteger(UInt32(1)); string("src", into: &$0); $0.writeInteger(UInt32(1)); $0.writeInteger(UInt32(0)) })
        auditor.serverSent(packet(102) { $0.writeInteger(UInt32(1)); string("h1", into: &$0) })
        auditor.clientSent(packet(3) { $0.writeInteger(UInt32(2)); string("dst", into: &$0); $0.writeInteger(UInt32(0x1a)); $0.writeInteger(UInt32(0)) })
        auditor.serverSent(packet(102) { $0.writeInteger(UInt32(2)); string("h2", into: &$0) })
        events.removeAll()

        let requests: [ByteBuffer] = [
            extended(10, "posix-rename@openssh.com") { string("a.txt", into: &$0); string("b.txt", into: &$0) },
            extended(11, "hardlink@openssh.com") { string("b.txt", into: &$0); string("c.txt", into: &$0) },
            extended(12, "lsetstat@openssh.com") { string("link", into: &$0); $0.writeInteger(UInt32(0)) },
            extended(13, "copy-data") {
                string("h1", into: &$0); $0.writeInteger(UInt64(0)); $0.writeInteger(UInt64(0)); string("h2", into: &$0); $0.writeInteger(UInt64(0))
            },
            extended(14, "fsync@openssh.com") { string("h2", into: &$0) },
            extended(15, "statvfs@openssh.com") { string("/", into: &$0) },
            extended(16, "limits@openssh.com"),
            extended(17, "expand-path@openssh.com") { string("~/x", into: &$0) },
            extended(18, "home-directory") { string("bob", into: &$0) },
            extended(19, "users-groups-by-id@openssh.com") { string("", into: &$0); string("", into: &$0) },
            extended(20, "frobnicate@example.com") { string("whatever", into: &$0) },
        ]
        for request in requests { auditor.clientSent(request) }
        auditor.serverSent(status(10))
        auditor.serverSent(status(11, 4, "Failure"))
        auditor.serverSent(status(12))
        auditor.serverSent(status(13))
        auditor.serverSent(status(14))
        auditor.serverSent(packet(201) { $0.writeInteger(UInt32(15)) })
        auditor.serverSent(packet(201) { $0.writeInteger(UInt32(16)) })
        auditor.serverSent(packet(104) { $0.writeInteger(UInt32(17)); $0.writeInteger(UInt32(0)) })
        auditor.serverSent(packet(104) { $0.writeInteger(UInt32(18)); $0.writeInteger(UInt32(0)) })
        auditor.serverSent(packet(201) { $0.writeInteger(UInt32(19)) })
        auditor.serverSent(status(20, 8, "Operation unsupported"))
        XCTAssertEqual(summary(events), [
            "TS016I rename a.txt -> b.txt", "TS019E link b.txt -> c.txt", "TS007I setstat link", "TSX00I extended src -> dst",
            "TSX00I extended dst", "TSX00I extended /", "TSX00I extended ", "TSX00I extended ~/x", "TSX00I extended ~bob",
            "TSX00I extended ", "TSX00E extended ",
        ])
        XCTAssertEqual(events.map { $0.fields["extension"]?.stringValue ?? "-" }, [
            "posix-rename@openssh.com", "hardlink@openssh.com", "lsetstat@openssh.com", "copy-data", "fsync@openssh.com",
            "statvfs@openssh.com", "limits@openssh.com", "expand-path@openssh.com", "home-directory",
            "users-groups-by-id@openssh.com", "frobnicate@example.com",
        ])
    }

    func testTruncatedExtendedRequestsAreReportedWithWhatCouldBeRead() {
        let names = ["posix-rename@openssh.com", "hardlink@openssh.com", "copy-data", "fsync@openssh.com", "lsetstat@openssh.com", "home-directory"]
        for name in names {
            let whole = extended(3, name) { string("first", into: &$0); $0.writeInteger(UInt64(1)); $0.writeInteger(UInt64(2)); string("second", into: &$0) }
            // Every prefix of the body (type, id, …), its length fixed up: short fields, lengths past the end.
            for cut in 1..<(whole.readableBytes - 4) {
                var body = whole.getSlice(at: 4, length: cut)!
                var framed = ByteBuffer()
                framed.writeInteger(UInt32(body.readableBytes))
                framed.writeBuffer(&body)
                var events: [Event] = []
                let auditor = SFTPAuditor { events.append(($0, $1)) }
                auditor.clientSent(framed)
                auditor.serverSent(status(3, 4, "Failure"))
                auditor.finish()
                XCTAssertEqual(events.count, cut >= 5 ? 1 : 0, "\(name) cut at \(cut): answered requests with an id are reported")
                XCTAssertTrue(events.allSatisfy { $0.kind.code.hasSuffix("E") })
            }
        }
        // A name's length past the packet, and a huge string length inside a small packet.
        var events: [Event] = []
        let auditor = SFTPAuditor { events.append(($0, $1)) }
        auditor.clientSent(packet(200) { $0.writeInteger(UInt32(4)); $0.writeInteger(UInt32.max); $0.writeString("posix") })
        auditor.clientSent(extended(5, "posix-rename@openssh.com") { $0.writeInteger(UInt32.max - 2); $0.writeString("a") })
        auditor.serverSent(status(4))
        auditor.serverSent(status(5))
        XCTAssertEqual(summary(events), ["TSX00I extended ", "TS016I rename "])
    }
}
