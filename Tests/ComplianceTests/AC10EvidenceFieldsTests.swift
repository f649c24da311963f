import Audit
@testable import Compliance
import Foundation
import TestSupport
import XCTest

/// A report over events decoded with only `AC10Report.evidenceFields` (what the live and offline
/// reports decode) is the report over the whole events: the engine reads no other field.
final class AC10EvidenceFieldsTests: XCTestCase {
    private typealias F = AC10Fixtures

    private static func reduced(_ events: [AuditEvent]) throws -> [AuditEvent] {
        try events.map { try AuditEvent.decode(json: $0.json(), keeping: AC10Report.evidenceFields) }
    }

    func testAReportFromTheEvidenceFieldsIsTheReportFromWholeEvents() throws {
        var stream = F.Stream()
        var random = SplitMix64(seed: 10)
        let users = ["ann", "bo", "cy", "di"]
        let roleSets = [["wide"], ["narrow"], ["wide", "narrow"], ["gone"]]
        for n in 0..<600 {
            let user = users[n % users.count], roles = roleSets[Int.random(in: 0..<roleSets.count, using: &random)]
            let start = Double.random(in: -200..<1400, using: &random)
            switch n % 9 {
            case 0: stream.certificate(user, roles: roles, start)
            case 1: stream.refusal(user, start, max: 2)
            case 2: stream.connection(user, "c\(n)", nil, start + 30, roles: roles, max: 1)   // began before the data
            case 3: stream.connection(user, "c\(n)", start, nil, roles: roles, max: 2)        // still open
            case 4:
                var event = AuditEvent.connectionStart(F.fields(user), id: "c\(n)", roles: roles, max: 0)
                event["max"] = nil   // the limit from the roles, then the certificate
                if n % 2 == 0 { event["roles"] = nil }
                stream.append(event, at: start)
            case 5: stream.session(user, AuditEvent.newUID(), start, n % 4 == 1 ? nil : start + 20, writtenLater: 3)
            case 6: stream.append(.exec(F.fields(user), sid: "s\(n)", command: "ls", outcome: .status(0)), at: start)   // not evidence
            case 7:
                var unusable = AuditEvent.connectionEnd(F.fields(user), id: "c\(n)", roles: roles, max: 2, cause: .closed, reason: nil)
                unusable["user"] = nil
                stream.append(unusable, at: start)
            default: stream.connection(user, AuditEvent.newUID(), start, start + Double.random(in: 1..<300, using: &random), roles: roles, max: 2)
            }
        }
        stream.connection("ann", "dup", 10, 20, roles: ["wide"], max: 2)
        stream.connection("ann", "dup", 15, 40, roles: ["wide"], max: 2)   // a second start and end for one id: the first count
        let roles = [try F.plainRole("wide", maxConnections: 2), try F.plainRole("narrow", maxConnections: 1)]
        for window in [F.window(0, 1200), F.window(-500, 2000), F.window(300, 301)] {
            let whole = AC10Report.make(events: stream.events, roles: roles, window: window, baseline: .high)
            let reduced = AC10Report.make(events: try Self.reduced(stream.events), roles: roles, window: window, baseline: .high)
            XCTAssertEqual(reduced, whole)
            XCTAssertEqual(try reduced.json(), try whole.json())
        }
        XCTAssertGreaterThan(AC10Report.make(events: stream.events, roles: roles, window: F.window(0, 1200), baseline: .high).users.count, 0)
    }

    func testEvidenceIdsArePairedAsTextEvenWhenTheyLookLikeUUIDs() throws {
        let lower = "0f9e8d7c-6b5a-4c3d-8e1f-a2b3c4d5e6f7"
        XCTAssertEqual(AC10Evidence.PairKey(lower), AC10Evidence.PairKey(lower))
        XCTAssertNotEqual(AC10Evidence.PairKey(lower), AC10Evidence.PairKey(lower.uppercased()), "different text, different key")
        XCTAssertEqual(AC10Evidence.PairKey(lower.uppercased()), .text(lower.uppercased()))
        XCTAssertEqual(AC10Evidence.PairKey("c1"), .text("c1"))
        XCTAssertEqual(AC10Evidence.PairKey("0f9e8d7c-6b5a-4c3d-8e1f-a2b3c4d5e6fg"), .text("0f9e8d7c-6b5a-4c3d-8e1f-a2b3c4d5e6fg"))
        XCTAssertEqual(AC10Evidence.PairKey("0f9e8d7c+6b5a-4c3d-8e1f-a2b3c4d5e6f7"), .text("0f9e8d7c+6b5a-4c3d-8e1f-a2b3c4d5e6f7"))
        guard case .uuid(let high, let low) = AC10Evidence.PairKey(lower) else { return XCTFail("a lowercase UUID is read as one") }
        XCTAssertEqual(high, 0x0f9e_8d7c_6b5a_4c3d)
        XCTAssertEqual(low, 0x8e1f_a2b3_c4d5_e6f7)
    }
}
