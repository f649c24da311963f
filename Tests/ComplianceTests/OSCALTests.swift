@testable import Compliance
import FIPSCrypto
import Foundation
import Identity
import XCTest

/// The OSCAL forms against NIST's OSCAL 1.2.1 schemas (compliance/schemas/oscal/), and their
/// identifiers: version 5 for what a document is about, version 4 for each document.
final class OSCALTests: XCTestCase {
    typealias F = AC10Fixtures
    static let assessmentResults = SchemaValidation.schema("compliance/schemas/oscal/oscal_assessment-results_schema.json")
    static let componentDefinition = SchemaValidation.schema("compliance/schemas/oscal/oscal_component_schema.json")

    let crypto = try! CryptoContext(mode: .nonFIPS)
    let generated = Date(timeIntervalSince1970: 1_750_100_000)

    func testNameBasedUUIDsFollowRFC9562() throws {
        let dns: [UInt8] = [0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8]
        let ids = OSCALIdentifiers(crypto: crypto)
        XCTAssertEqual(try ids.uuid("www.example.com", in: dns), "2ed6657d-e927-568b-95e1-2665a8aea6a2", "RFC 9562 appendix A.4")
        let url: [UInt8] = [0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8]
        XCTAssertEqual(try ids.uuid("https://portcullis.dev/ns/oscal", in: url), OSCALIdentifiers.format(OSCALIdentifiers.namespace),
                       "our namespace is uuid5(NAMESPACE_URL, our prop namespace)")
        let random = try ids.randomUUID()
        XCTAssertEqual(Array(random)[14], "4")
        XCTAssertNotEqual(random, try ids.randomUUID())
    }

    func testTheComponentDefinitionValidatesAtEveryBaseline() throws {
        let catalog = try ControlCatalogTests.shipped.get()
        for baseline in Baseline.allCases {
            let document = try catalog.oscalComponentDefinition(baseline: baseline, parameters: ["ac-07_odp.01": "3"], generated: generated, crypto: crypto)
            XCTAssertEqual(try SchemaValidation.oscalErrors(document, schema: Self.componentDefinition), "", "at \(baseline)")
            let requirements = try implementedRequirements(document)
            XCTAssertEqual(requirements.compactMap { $0["control-id"] as? String },
                           catalog.controls.filter { $0.applies(at: baseline) }.map(\.oscalID))
        }
        let high = try implementedRequirements(try catalog.oscalComponentDefinition(baseline: .high, parameters: ["ac-07_odp.01": "3"],
                                                                                    generated: generated, crypto: crypto))
        let ac7 = try XCTUnwrap(high.first { $0["control-id"] as? String == "ac-7" })
        let set = ac7["set-parameters"] as? [[String: Any]] ?? []
        XCTAssertEqual(set.first { $0["param-id"] as? String == "ac-07_odp.01" }?["values"] as? [String], ["3"])
        XCTAssertTrue((ac7["props"] as? [[String: Any]] ?? []).contains { $0["name"] as? String == "unset-parameter" && $0["value"] as? String == "ac-07_odp.02" })
    }

    func testAssessmentResultsValidateForEveryVerdictAndBothReports() throws {
        var stream = F.Stream()
        stream.connection("alice", "c1", 10, 40, roles: ["dev"], max: 1)
        stream.connection("alice", "c2", 20, 50, roles: ["dev"], max: 1)
        stream.refusal("bob\nwith a newline ", 30, max: 1)
        let roles = [ControlCatalogTests.role("dev", maxConnections: 1), ControlCatalogTests.role("open", maxConnections: nil)]
        let ac10 = AC10Report.make(events: stream.events, roles: roles, window: F.window(0, 100), baseline: .high)
        let fedramp = FedRAMPReport.make(catalog: try ControlCatalogTests.shipped.get(), facts: ControlCatalogTests.facts(roles), baseline: .high,
                                         window: ReportWindow(from: F.at(0), to: F.at(100)), eventCounts: ["connection.start": 2], ac10: ac10,
                                         cryptoBoundary: [])
        XCTAssertEqual(Set(fedramp.controls.map(\.verdict)), [.satisfied, .notSatisfied, .manual], "every verdict is in the sample")
        let documents = [try fedramp.oscal(cluster: "prod east", generated: generated, crypto: crypto),
                         try ac10.oscal(cluster: "prod", generated: generated, crypto: crypto)]
        for document in documents {
            XCTAssertEqual(try SchemaValidation.oscalErrors(document, schema: Self.assessmentResults), "")
        }
        let result = try XCTUnwrap(try results(documents[0]).first)
        let findings = try XCTUnwrap(result["findings"] as? [[String: Any]])
        XCTAssertEqual(findings.count, fedramp.controls.count)
        func status(_ id: String) -> [String: Any]? {
            (findings.first { ($0["target"] as? [String: Any])?["target-id"] as? String == id }?["target"] as? [String: Any])?["status"] as? [String: Any]
        }
        XCTAssertEqual(status("ac-10_smt")?["state"] as? String, "not-satisfied")
        XCTAssertEqual(status("ac-10_smt")?["reason"] as? String, "fail")
        let manual = try XCTUnwrap(fedramp.controls.first { $0.verdict == .manual })
        XCTAssertEqual(status(manual.oscalStatementID)?["reason"] as? String, "other", "manual: not shown satisfied, and not a failure")
    }

    func testWhatADocumentIsAboutKeepsItsUUIDAndEachDocumentGetsANewOne() throws {
        var stream = F.Stream()
        stream.connection("alice", "c1", 10, 40, roles: ["dev"], max: 2)
        let report = AC10Report.make(events: stream.events, roles: [ControlCatalogTests.role("dev", maxConnections: 2)], window: F.window(0, 100),
                                     baseline: .high)
        let first = try JSONSerialization.jsonObject(with: try report.oscal(cluster: "prod", generated: generated, crypto: crypto)) as! [String: Any]
        let second = try JSONSerialization.jsonObject(with: try report.oscal(cluster: "prod", generated: generated, crypto: crypto)) as! [String: Any]
        let other = try JSONSerialization.jsonObject(with: try report.oscal(cluster: "staging", generated: generated, crypto: crypto)) as! [String: Any]
        func document(_ object: [String: Any]) -> [String: Any] { object["assessment-results"] as! [String: Any] }
        func finding(_ object: [String: Any]) -> String {
            (((document(object)["results"] as! [[String: Any]])[0]["findings"] as! [[String: Any]])[0]["uuid"] as! String)
        }
        XCTAssertNotEqual(document(first)["uuid"] as? String, document(second)["uuid"] as? String, "a new document each run (v4)")
        XCTAssertEqual(finding(first), finding(second), "the same finding over the same window (v5)")
        XCTAssertNotEqual(finding(first), finding(other), "another cluster's finding is another finding")
    }

    func implementedRequirements(_ document: Data) throws -> [[String: Any]] {
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: document) as? [String: Any])
        let definition = try XCTUnwrap(object["component-definition"] as? [String: Any])
        let component = try XCTUnwrap((definition["components"] as? [[String: Any]])?.first)
        let implementation = try XCTUnwrap((component["control-implementations"] as? [[String: Any]])?.first)
        return try XCTUnwrap(implementation["implemented-requirements"] as? [[String: Any]])
    }

    func results(_ document: Data) throws -> [[String: Any]] {
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: document) as? [String: Any])
        return try XCTUnwrap((object["assessment-results"] as? [String: Any])?["results"] as? [[String: Any]])
    }
}

extension FedRAMPReport.ControlFinding {
    var oscalStatementID: String {
        id.lowercased().replacingOccurrences(of: "(", with: ".").replacingOccurrences(of: ")", with: "") + "_smt"
    }
}
