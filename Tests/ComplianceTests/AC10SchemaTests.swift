import Compliance
import Foundation
import Identity
import TestSupport
import XCTest

/// The report's JSON against compliance/schemas/ac-10-report.json, with Python's `jsonschema`
/// (Debian: python3-jsonschema): the project has no Swift JSON Schema validator.
final class AC10SchemaTests: XCTestCase {
    typealias F = AC10Fixtures

    static let schema = TestEnvironment.packageRoot.appendingPathComponent("compliance/schemas/ac-10-report.json")

    /// For each instance file after the schema, one line: its errors as a JSON array (empty: valid).
    /// Exit status 3 when jsonschema is missing. Works with jsonschema 4.10 (Debian 12) and later.
    static let validator = """
        import json, sys
        try:
            import jsonschema
        except ImportError:
            sys.exit(3)
        schema = json.load(open(sys.argv[1]))
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
        for path in sys.argv[2:]:
            errors = sorted(validator.iter_errors(json.load(open(path))), key=lambda error: list(error.absolute_path))
            print(json.dumps(["/" + "/".join(map(str, error.absolute_path)) + ": " + error.message for error in errors]))
        """

    /// The schema errors of each document (empty: valid), in one run of python3.
    func validate(_ documents: [Data]) throws -> [[String]] {
        let directory = try TestEnvironment.temporaryDirectory("ac10-schema")
        defer { try? FileManager.default.removeItem(at: directory) }
        let paths = try documents.enumerated().map { index, json in
            let path = directory.appendingPathComponent("report-\(index).json")
            try json.write(to: path)
            return path.path
        }
        // The python3 on PATH, as a developer's shell would run it.
        let process = try ChildProcess("/usr/bin/env", ["python3", "-c", Self.validator, Self.schema.path] + paths,
                                       output: directory.appendingPathComponent("output"))
        let status = try XCTUnwrap(process.wait(timeout: 60), "the validator did not finish")
        if status == 127 { try missing("python3 is not on PATH") }
        if status == 3 { try missing("Python's jsonschema is not installed (apt-get install python3-jsonschema)") }
        XCTAssertEqual(status, 0, process.output)
        let lines = process.output.split(separator: "\n").filter { $0.hasPrefix("[") }
        XCTAssertEqual(lines.count, documents.count, process.output)
        return try lines.map { try JSONDecoder().decode([String].self, from: Data($0.utf8)) }
    }

    /// CI runs as root: there a missing validator fails the test; elsewhere it skips with the reason.
    func missing(_ reason: String) throws -> Never {
        if getuid() == 0 {
            XCTFail("required when running as root (CI): \(reason)")
            throw XCTSkip("failed above: \(reason)")
        }
        try TestEnvironment.missing(reason)
    }

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
