@testable import Compliance
import FIPSCrypto
import Foundation
import Identity
import TestSupport
import XCTest

/// The HTML forms: self-contained pages whose only style and script are allowed by their hashes,
/// data escaped everywhere, a chart that keeps the peak of any series, and a page that renders in
/// Debian's headless Chromium without a console message, an exception, a CSP violation or a
/// network request (scripts/render-check.py), with a screenshot and a PDF kept.
final class ReportHTMLTests: XCTestCase {
    typealias F = AC10Fixtures
    let generated = Date(timeIntervalSince1970: 1_750_100_000)

    /// Violations, a limit that changes with the roles, a user with refusals only, a hostile name.
    func sample() throws -> AC10Report {
        var stream = F.Stream()
        stream.connection("alice", "c1", 10, 40, roles: ["dev"], max: 2)
        stream.connection("alice", "c2", 20, 50, roles: ["dev"], max: 2)
        stream.connection("alice", "c3", 30, 45, roles: ["dev"], max: 2)
        stream.connection("bob", "c4", 5, 60, roles: ["dev"], max: 2)
        stream.connection("bob", "c5", 70, 90, roles: ["admin"], max: 3)
        stream.connection("bob", "c6", 75, 95, roles: ["admin"], max: 3)
        stream.refusal("<img src=x onerror=alert(1)>", 50, max: 2)
        let roles = [try F.plainRole("dev", maxConnections: 2),
                     try F.role("kind: role\nmetadata: {name: admin}\nspec: {options: {max_connections: 3}, allow: {logins: [root]}}\n"),
                     try F.plainRole("open", maxConnections: 0)]
        return AC10Report.make(events: stream.events, roles: roles, window: F.window(0, 100), baseline: .high, series: true)
    }

    func fedramp() throws -> FedRAMPReport {
        FedRAMPReport.make(catalog: try ControlCatalogTests.shipped.get(), facts: ControlCatalogTests.facts([ControlCatalogTests.role("dev", maxConnections: 2)]),
                           baseline: .high, window: ReportWindow(from: F.at(0), to: F.at(100)), eventCounts: ["connection.start": 12], ac10: try sample(),
                           cryptoBoundary: [CryptoBoundary(name: "HTTPS <protocol>", algorithms: "TLS 1.2", module: "BoringSSL", fipsProvider: false)])
    }

    func testTheInlineStyleAndScriptAreExactlyWhatTheContentSecurityPolicyAllows() throws {
        let crypto = try CryptoContext(mode: .nonFIPS)
        for page in [try sample().html(cluster: "prod", generated: generated), try fedramp().html(cluster: "prod", generated: generated)] {
            let style = try XCTUnwrap(between(page, "<style>", "</style>"))
            let script = try XCTUnwrap(between(page, "<script>", "</script>"))
            let policy = try XCTUnwrap(between(page, "Content-Security-Policy\" content=\"", "\""))
            XCTAssertTrue(policy.contains("style-src 'sha256-\(Base64.encode(try crypto.digest(.sha256, Array(style.utf8))))'"), policy)
            XCTAssertTrue(policy.contains("script-src 'sha256-\(Base64.encode(try crypto.digest(.sha256, Array(script.utf8))))'"), policy)
            XCTAssertTrue(policy.hasPrefix("default-src 'none';"), "nothing else may load")
            XCTAssertEqual(page.components(separatedBy: "<script").count, 2, "one script")
        }
    }

    func testEverythingFromTheDataIsEscaped() throws {
        let page = try sample().html(cluster: "<b>prod</b>", generated: generated)
        XCTAssertFalse(page.contains("<img"), "a user name is text, never markup")
        XCTAssertTrue(page.contains("&lt;img src=x onerror=alert(1)&gt;"))
        XCTAssertFalse(page.contains("<b>prod</b>"))
        XCTAssertFalse(try fedramp().html(cluster: "prod", generated: generated).contains("HTTPS <protocol>"))
    }

    func testTheChartKeepsThePeakOfALongSeriesAndShadesEachViolation() throws {
        // 100,000 changes between 1 and 2 over a day, one spike to 9 in the middle.
        let from = Date(timeIntervalSince1970: 1_750_000_000), to = from.addingTimeInterval(86400)
        var open = (0..<100_000).map { ConcurrencyTimeline.Step(at: from.addingTimeInterval(Double($0) * 0.864), value: 1 + $0 % 2) }
        open[50_000].value = 9
        let chart = ConcurrencyChart(user: "alice", id: "u1", window: ReportWindow(from: from, to: to), open: open,
                                     limits: [.init(at: from, value: 2)],
                                     violations: [.init(from: from.addingTimeInterval(43_200), to: from.addingTimeInterval(43_201), concurrent: 9, limit: 2)],
                                     peak: 9, peakAt: open[50_000].at)
        let path = chart.openPath()
        XCTAssertLessThan(path.filter { "HV".contains($0) }.count, 4 * 724 + 8, "at most a few commands per pixel column")
        XCTAssertTrue(path.contains("V\(ConcurrencyChart.f(chart.y(9)))"), "the spike survives thinning")
        let svg = chart.svg()
        XCTAssertEqual(svg.components(separatedBy: "<rect class=\"over\"").count, 2, "one shaded stretch, at least 2 units wide")
        XCTAssertTrue(svg.contains("peak 9"))
        XCTAssertEqual(ConcurrencyChart.countTicks(4), [0, 1, 2, 3, 4])
        XCTAssertEqual(ConcurrencyChart.countTicks(30), [0, 5, 10, 15, 20, 25, 30])
        let week = ConcurrencyChart(user: "a", id: "u1", window: ReportWindow(from: from, to: from.addingTimeInterval(7 * 86400)), open: [], limits: [],
                                    violations: [], peak: 0, peakAt: nil)
        XCTAssertEqual(week.timeTicks().count, 7, "daily ticks over a week")
        XCTAssertTrue(week.svg().contains("No connection was open."))
    }

    func testThePagesRenderInHeadlessChromiumWithoutAProblem() throws {
        let artifacts = TestEnvironment.packageRoot.appendingPathComponent(".build/test-artifacts/report-html")
        try? FileManager.default.removeItem(at: artifacts)
        try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
        let pages = [("ac-10", try sample().html(cluster: "prod", generated: generated)), ("fedramp", try fedramp().html(cluster: "prod", generated: generated))]
        for (name, page) in pages {
            let file = artifacts.appendingPathComponent("\(name).html")
            try page.write(to: file, atomically: true, encoding: .utf8)
            for mode in [[], ["--no-js"]] {
                let output = artifacts.appendingPathComponent(name + (mode.isEmpty ? "" : "-no-js"))
                let process = try ChildProcess("/usr/bin/env", ["python3", TestEnvironment.packageRoot.appendingPathComponent("scripts/render-check.py").path,
                                                                file.path, output.path, "--timeout", "90"] + mode,
                                               output: artifacts.appendingPathComponent("\(name)\(mode.first ?? "").log"))
                let status = try XCTUnwrap(process.wait(timeout: 150), "render-check did not finish")
                if status == 2, process.output.contains("no Chromium") { try SchemaValidation.missing("Debian's chromium is not installed") }
                XCTAssertEqual(status, 0, "\(name) \(mode): \(process.output)")
                XCTAssertGreaterThan((try? Data(contentsOf: output.appendingPathComponent("screenshot.png")))?.count ?? 0, 10_000, "a screenshot is kept")
                XCTAssertGreaterThan((try? Data(contentsOf: output.appendingPathComponent("print.pdf")))?.count ?? 0, 10_000, "and the page printed")
            }
        }
    }

    func between(_ text: String, _ start: String, _ end: String) -> String? {
        guard let open = text.range(of: start), let close = text.range(of: end, range: open.upperBound..<text.endIndex) else { return nil }
        return String(text[open.upperBound..<close.lowerBound])
    }
}
