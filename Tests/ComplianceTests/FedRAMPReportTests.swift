import Compliance
import Foundation
import Identity
import XCTest

/// `pcctl report fedramp`'s value: every control at a baseline with its checks, the parameter
/// values in force, the evidence counts, and AC-10's observed verdict; its JSON against
/// compliance/schemas/fedramp-report.json.
final class FedRAMPReportTests: XCTestCase {
    typealias F = AC10Fixtures

    func catalog() throws -> ControlCatalog { try ControlCatalogTests.shipped.get() }

    func report(_ roles: [Role] = [ControlCatalogTests.role("dev", maxConnections: 2)], baseline: Baseline = .high, counts: [String: Int] = [:],
                parameters: [String: String] = [:], ac10: AC10Report? = nil) throws -> FedRAMPReport {
        FedRAMPReport.make(catalog: try catalog(), facts: ControlCatalogTests.facts(roles), baseline: baseline,
                           window: ReportWindow(from: F.at(0), to: F.at(100)), eventCounts: counts, parameters: parameters, ac10: ac10,
                           cryptoBoundary: [CryptoBoundary(name: "Encryption at rest", algorithms: "AES-256-GCM", module: "OpenSSL FIPS 3.0.9", fipsProvider: true)])
    }

    func control(_ report: FedRAMPReport, _ id: String) throws -> FedRAMPReport.ControlFinding {
        try XCTUnwrap(report.controls.first { $0.id == id }, "\(id) is not in the report at \(report.baseline)")
    }

    func testEveryControlOfTheBaselineIsReportedInCatalogOrderWithItsCounts() throws {
        let high = try report(counts: ["connection.start": 7, "session.rejected": 2])
        XCTAssertEqual(high.controls.map(\.id), try catalog().evaluate(ControlCatalogTests.facts(), baseline: .high).map(\.id))
        XCTAssertEqual(try control(high, "AC-10").evidence.map(\.event), ["connection.start", "connection.end", "session.rejected"])
        XCTAssertEqual(try control(high, "AC-10").evidence.map(\.count), [7, 0, 2], "an event with none in the window counts 0")
        XCTAssertEqual(high.summary.satisfied + high.summary.notSatisfied + high.summary.manual, high.controls.count)
        XCTAssertFalse(try control(high, "AU-14").inBaseline, "AU-14 is in no baseline, reported because the organization selects it")
        let moderate = try report(baseline: .moderate)
        XCTAssertNil(moderate.controls.first { $0.id == "AC-10" }, "AC-10 is in Rev5 High only")
    }

    func testConfiguredParametersFillOnlyWhatFedRAMPLeavesToTheProvider() throws {
        let report = try report(parameters: ["ac-07_odp.01": "3", "ac-10_odp.02": "ten sessions for everyone"])
        let ac7 = try control(report, "AC-7").parameters
        XCTAssertEqual(ac7.first { $0.id == "ac-07_odp.01" }?.value, "3")
        XCTAssertEqual(ac7.first { $0.id == "ac-07_odp.01" }?.source, .configuration)
        XCTAssertEqual(ac7.first { $0.id == "ac-07_odp.02" }?.source, .unset, "CSP-defined and not configured")
        XCTAssertNil(ac7.first { $0.id == "ac-07_odp.02" }?.value)
        let ac10 = try XCTUnwrap(try control(report, "AC-10").parameters.first { $0.id == "ac-10_odp.02" })
        XCTAssertEqual(ac10.source, .fedramp, "a configured value never overrides FedRAMP's")
        XCTAssertEqual(ac10.value, AC10Baseline.high.statement)
    }

    func testTheObservedConcurrencyDecidesAC10WithTheConfiguration() throws {
        var stream = F.Stream()
        stream.connection("alice", "c1", 10, 40, roles: ["dev"], max: 1)
        stream.connection("alice", "c2", 20, 50, roles: ["dev"], max: 1)
        let roles = [ControlCatalogTests.role("dev", maxConnections: 1)]
        let over = AC10Report.make(events: stream.events, roles: roles, window: F.window(0, 100), baseline: .high)
        XCTAssertEqual(over.control.verdict, .notSatisfied, "two connections over a limit of one")
        let report = try report(roles, ac10: over)
        let ac10 = try control(report, "AC-10")
        XCTAssertEqual(ac10.verdict, .notSatisfied)
        let observed = try XCTUnwrap(ac10.checks.first { $0.id == "observed-concurrency" })
        XCTAssertEqual(observed.verdict, .notSatisfied)
        XCTAssertEqual(observed.reasons, over.control.reasons)
        XCTAssertEqual(ac10.checks.filter { $0.id != "observed-concurrency" }.map(\.verdict), [.satisfied], "the configuration alone passes")
        XCTAssertGreaterThan(report.summary.notSatisfied, 0)
        XCTAssertEqual(report.summary.verdict, .notSatisfied)
    }

    func testTheJSONValidatesAgainstItsSchemaAndTheSchemaRejectsWhatItNeverWrites() throws {
        let full = try report(counts: ["connection.start": 1], parameters: ["ac-07_odp.01": "3"])
        var offline = full
        offline.cryptoBoundary = nil
        XCTAssertEqual(try SchemaValidation.reportErrors([try full.json(), try offline.json(), try report(baseline: .low).json()],
                                                         schema: SchemaValidation.schema("compliance/schemas/fedramp-report.json")), [[], [], []])
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: try full.json()) as? [String: Any])
        var wrong = object
        wrong["baseline"] = "medium"
        var extra = object
        extra["summary"] = ["verdict": "satisfied"]
        let errors = try SchemaValidation.reportErrors(try [wrong, extra].map { try JSONSerialization.data(withJSONObject: $0) },
                                                       schema: SchemaValidation.schema("compliance/schemas/fedramp-report.json"))
        XCTAssertTrue(errors.allSatisfy { !$0.isEmpty }, "\(errors)")
    }

    func testTheMarkdownEscapesWhatTheDataControls() throws {
        var stream = F.Stream()
        stream.connection("<script>alert(1)</script>|x", "c1", 10, 40, roles: ["dev"], max: 2)
        let ac10 = AC10Report.make(events: stream.events, roles: [try F.plainRole("dev", maxConnections: 2)], window: F.window(0, 100), baseline: .high)
        let markdown = ac10.markdown()
        XCTAssertFalse(markdown.contains("<script>"), markdown)
        XCTAssertTrue(markdown.contains("\\<script\\>alert(1)\\</script\\>\\|x"), markdown)
    }
}
