import Compliance
import Foundation
import Identity
import TestSupport
import XCTest

/// The report's JSON against compliance/schemas/ac-10-report.json (`SchemaValidation`).
final class AC10SchemaTests: XCTestCase {
    typealias F = AC10Fixtures

    static let schema = SchemaValidation.schema("compliance/schemas/ac-10-report.json")

    func validate(_ documents: [Data]) throws -> [[String]] { try SchemaValidation.reportErrors(documents, schema: Self.schema) }

    /// Everything a report can hold: violations, open ends, refusals, a role not given, nulls.
    func fullReport() throws -> AC10Report {
        var stream = F.Stream()
        stream.connection("alice", "c1", 10, 40, roles: ["dev"], max: 2)
        stream.connection("alice", "c2", 20, 50, roles: ["dev"], max: 2)
        stream.connection("alice", "c3", 30, nil, roles: ["dev"], max: 2)
        stream.session("alice", "s1", 11, nil)
        stream.refusal("alice", 45, max: 2)
        stream.connection("bob", "c4", nil, 20, roles: ["gone"], max: 1)
        stream.refusal("carol", 5, max: 1)
        let roles = [try F.plainRole("dev", maxConnections: 2), try F.plainRole("wide", maxConnections: 5),
                     try F.plainRole("unset", maxConnections: nil),
                     try F.role("kind: role\nmetadata: {name: admin}\nspec: {options: {max_connections: 3}, allow: {logins: [root]}}\n")]
        return AC10Report.make(events: stream.events, roles: roles, window: F.window(0, 100), baseline: .high)
    }

    func testTheReportValidatesAgainstItsSchema() throws {
        let report = try fullReport()
        XCTAssertEqual(Set(report.users.map(\.verdict)), [.notSatisfied, .satisfied])
        XCTAssertTrue(report.roles.contains { $0.privileged == nil }, "a role with nulls is in the sample")
        XCTAssertTrue(report.users.contains { $0.limit == nil }, "a user with a null limit is in the sample")
        let empty = AC10Report.make(events: [], roles: [], window: F.window(0, 100), baseline: .moderateRev4)
        XCTAssertEqual(try validate([try report.json(), try empty.json()]), [[], []])
    }

    func testTheSchemaRejectsWhatTheReportNeverWrites() throws {
        let json = try fullReport().json()
        let mutations: [(String, (inout [String: Any]) -> Void)] = [
            ("an unknown verdict", { $0["control"] = ["verdict": "maybe", "reasons": ["x"]] }),
            ("a missing window", { $0["window"] = nil }),
            ("a time that is not RFC 3339 UTC", { $0["window"] = ["from": "2025-06-15 15:06:40", "to": "2025-06-15T15:06:40.000Z"] }),
            ("an extra key", { $0["extra"] = true }),
            ("a control without reasons", { $0["control"] = ["verdict": "manual", "reasons": [] as [String]] }),
            ("a user without peak_at", { object in
                var users = object["users"] as! [[String: Any]]
                var connections = users[0]["connections"] as! [String: Any]
                connections["peak_at"] = nil
                users[0]["connections"] = connections
                object["users"] = users
            }),
        ]
        let documents = try mutations.map { _, mutate in
            var object = try XCTUnwrap(JSONSerialization.jsonObject(with: json) as? [String: Any])
            mutate(&object)
            return try JSONSerialization.data(withJSONObject: object)
        }
        for ((what, _), errors) in zip(mutations, try validate(documents)) {
            XCTAssertFalse(errors.isEmpty, "\(what) must be rejected")
        }
    }
}
