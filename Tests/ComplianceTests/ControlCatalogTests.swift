@testable import Compliance
import Foundation
import Identity
import XCTest
import YAMLNodes

/// compliance/controls/*.yaml load and are complete, mistakes in them are reported with file,
/// line and reason, the checks answer right on facts built for the purpose, and
/// compliance/controls.md is their current rendering.
final class ControlCatalogTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let directory = root.appendingPathComponent("compliance/controls").path
    static let page = root.appendingPathComponent("compliance/controls.md")

    /// The controls the catalog must cover.
    static let required = ["AC-2", "AC-2(12)", "AC-3", "AC-6(9)", "AC-7", "AC-8", "AC-10", "AC-11", "AC-12", "AC-17", "AC-17(1)", "AC-17(3)",
                           "AU-2", "AU-3", "AU-3(1)", "AU-6", "AU-8", "AU-9", "AU-9(3)", "AU-11", "AU-12", "AU-14",
                           "IA-2", "IA-2(1)", "IA-2(2)", "IA-5", "IA-5(1)", "IA-11", "SC-8", "SC-10", "SC-12", "SC-13", "SC-28", "SI-7"]

    func testEveryShippedControlFileLoadsAndTheListIsComplete() throws {
        let catalog = try ControlCatalog.load(directory: Self.directory)
        let ids = catalog.controls.map(\.id)
        XCTAssertEqual(Set(Self.required).subtracting(ids), [], "controls missing from compliance/controls")
        XCTAssertEqual(ids.count, Set(ids).count)
        XCTAssertEqual(Array(ids.prefix(4)), ["AC-2", "AC-2(12)", "AC-2(13)", "AC-3"], "in control order")
        XCTAssertLessThan(ids.firstIndex(of: "AC-8")!, ids.firstIndex(of: "AC-10")!)
        for control in catalog.controls {
            XCTAssertFalse(control.checks.isEmpty, control.id)
            XCTAssertFalse(control.implementation.isEmpty, control.id)
        }
    }

    func testBaselinesAndParametersAreFedRAMPs() throws {
        let catalog = try ControlCatalog.load(directory: Self.directory)
        func baselines(_ id: String) -> [Baseline] { catalog.control(id)?.baselines ?? [.low] }
        XCTAssertEqual(baselines("AC-10"), [.high])
        XCTAssertEqual(baselines("AU-14"), [], "AU-14 is in no baseline")
        XCTAssertEqual(baselines("SC-10"), [.moderate, .high])
        XCTAssertEqual(baselines("AU-9(3)"), [.high])
        XCTAssertEqual(baselines("AC-2(12)"), [.moderate, .high], "a FedRAMP addition to Moderate")
        XCTAssertEqual(baselines("SC-8"), [.low, .moderate, .high], "a FedRAMP addition to Low")
        XCTAssertEqual(baselines("SI-7"), [.moderate, .high])
        XCTAssertEqual(baselines("IA-2(1)"), [.low, .moderate, .high])

        let ac10 = try XCTUnwrap(catalog.control("AC-10")?.parameters.first { $0.id == "ac-10_odp.02" })
        XCTAssertEqual(ac10.values, [.high: "three (3) sessions for privileged access and two (2) sessions for non-privileged access"])
        let sc10 = try XCTUnwrap(catalog.control("SC-10")?.parameters.first)
        XCTAssertEqual(sc10.values[.moderate], "no longer than ten (10) minutes for privileged sessions and no longer than fifteen (15) minutes for user sessions")
        XCTAssertEqual(catalog.control("AC-7")?.parameters.map { $0.values[.high] }, Array(repeating: "CSP-defined", count: 6), "Rev5 sets no AC-7 numbers")
        XCTAssertEqual(catalog.control("AU-8")?.parameters.first?.values[.low], "one second granularity of time measurement")
    }

    // MARK: Broken files

    static let valid = """
        id: AC-10
        title: Concurrent Session Control
        baselines: [high]
        parameters:
          - id: ac-10_odp.02
            label: number
            high: three (3) sessions for privileged access and two (2) sessions for non-privileged access
        implementation: >
          Limits.
        checks:
          - id: max-connections
            description: Every role limits its holders' connections.
            rule: {roles_max_connections_at_most: {privileged: 3, non_privileged: 2}}
        evidence: [connection.start, session.rejected]

        """

    /// `text` as the only file of a fresh directory; the load's error, or "loaded".
    func loadError(_ text: String, name: String = "ac-10.yaml") throws -> (path: String, error: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("controls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try ControlCatalog.load(directory: directory.path)
            return (path, "loaded")
        } catch let error as ConfigurationError {
            XCTAssertEqual(error.file, path)
            return (path, "\(error)")
        }
    }

    func testAValidFileLoads() throws {
        XCTAssertEqual(try loadError(Self.valid).error, "loaded")
    }

    func testABrokenFileNamesFileLineAndReason() throws {
        func broken(_ from: String, _ to: String, name: String = "ac-10.yaml") throws -> (path: String, error: String) {
            let text = Self.valid.replacingOccurrences(of: from, with: to)
            XCTAssertTrue(Self.valid.contains(from), "'\(from)' is in the valid file")
            return try loadError(text, name: name)
        }
        // A typo'd key, with the one meant.
        var (path, error) = try broken("implementation: >", "implementaton: >")
        XCTAssertTrue(error.hasPrefix("\(path):8:1: unknown key 'implementaton' at the top level; did you mean 'implementation'?"), error)
        (path, error) = try broken("    description:", "    descripton:")
        XCTAssertTrue(error.hasPrefix("\(path):12:5: unknown key 'descripton' in 'checks[0]'; did you mean 'description'?"), error)
        // Wrong types.
        (path, error) = try broken("baselines: [high]", "baselines: high")
        XCTAssertEqual(error, "\(path):3:12: 'baselines' must be a list (items starting with '- ')")
        (path, error) = try broken("privileged: 3,", "privileged: three,")
        XCTAssertEqual(error, "\(path):13:56: 'checks[0].rule.roles_max_connections_at_most.privileged' must be a whole number, not 'three'")
        (path, error) = try broken("baselines: [high]", "baselines: [hihg]")
        XCTAssertEqual(error, "\(path):3:13: 'baselines' must be one of low, moderate, high, not 'hihg'; did you mean 'high'?")
        // An unknown rule, and rules written the wrong way.
        (path, error) = try broken("rule: {roles_max_connections_at_most: {privileged: 3, non_privileged: 2}}", "rule: fips_enable")
        XCTAssertTrue(error.hasPrefix("\(path):13:11: unknown rule 'fips_enable' in 'checks[0].rule'; did you mean 'fips_enabled'?"), error)
        (path, error) = try broken("rule: {roles_max_connections_at_most: {privileged: 3, non_privileged: 2}}", "rule: roles_max_connections_at_most")
        XCTAssertEqual(error, "\(path):13:11: rule 'roles_max_connections_at_most' needs settings: write it as {roles_max_connections_at_most: ...}")
        (path, error) = try broken("rule: {roles_max_connections_at_most: {privileged: 3, non_privileged: 2}}", "rule: {banner_set: 12h}")
        XCTAssertEqual(error, "\(path):13:24: rule 'banner_set' takes no settings: write it as just 'banner_set'")
        (path, error) = try broken("rule: {roles_max_connections_at_most: {privileged: 3, non_privileged: 2}}", "rule: {audit_retention_at_least: 90 days}")
        XCTAssertEqual(error, "\(path):13:38: 'checks[0].rule.audit_retention_at_least' must be a duration such as 90d, 12h or 15m, not '90 days'")
        // Evidence that is not an audit event.
        (path, error) = try broken("evidence: [connection.start,", "evidence: [connection.strat,")
        XCTAssertEqual(error, "\(path):14:12: 'evidence' names 'connection.strat', which is not an audit event (docs/events.md); did you mean 'connection.start'?")
        // Values that contradict the baselines.
        (path, error) = try broken("    high: three", "    moderate: x\n    high: three")
        XCTAssertTrue(error.hasPrefix("\(path):7:15: 'parameters[0].moderate': AC-10 is not in the Moderate baseline"), error)
        (path, error) = try broken("baselines: [high]", "baselines: [moderate, high]")
        XCTAssertTrue(error.hasPrefix("\(path):5:5: parameter 'ac-10_odp.02' has no 'moderate' value"), error)
        (path, error) = try broken("    rule:", "    baselines: [low]\n    rule:")
        XCTAssertTrue(error.hasPrefix("\(path):13:16: 'checks[0].baselines' names low, but AC-10 is only in high"), error)
        // Missing pieces, a misnamed file, a syntax error.
        (path, error) = try broken("evidence: [connection.start, session.rejected]\n", "")
        XCTAssertTrue(error.hasPrefix("\(path):1:1: a control needs 'evidence'"), error)
        (path, error) = try broken("id: AC-10", "id: AC-10", name: "ac10.yaml")
        XCTAssertEqual(error, "\(path):1:5: the file for AC-10 must be named ac-10.yaml, not ac10.yaml")
        (path, error) = try broken("checks:\n", "checks: [\n")
        XCTAssertTrue(error.hasPrefix("\(path):"), error)
        XCTAssertTrue(error.contains("YAML syntax"), error)
    }

    func testEveryRuleNameIsRead() throws {
        let settings = ["roles_max_connections_at_most": "{privileged: 3, non_privileged: 2}", "idle_timeout_at_most": "{privileged: 10m, non_privileged: 15m}",
                        "certificate_lifetime_at_most": "12h", "audit_retention_at_least": "90d", "manual": "look", "known_gap": "missing"]
        for name in ControlRule.names {
            let rule = settings[name].map { "{\(name): \($0)}" } ?? name
            let text = Self.valid.replacingOccurrences(of: "{roles_max_connections_at_most: {privileged: 3, non_privileged: 2}}", with: rule)
            let control = try ControlCatalogYAML.control(text, file: "/x/ac-10.yaml")
            XCTAssertEqual(control.checks.first?.rule.name, name)
        }
    }

    // MARK: Verdicts

    static func facts(_ roles: [Role] = [], fips: Bool = true, idle: Duration? = .seconds(15 * 60), disconnectExpiredCert: Bool = true,
                      motd: Bool = true, ttl: Duration = .seconds(12 * 3600), locking: RoleOptions.LockingMode = .strict,
                      retention: Duration? = nil) -> ComplianceFacts {
        ComplianceFacts(fipsEnabled: fips, clusterIdleTimeout: idle, disconnectExpiredCert: disconnectExpiredCert, maxFailedLogins: 3,
                        failedLoginWindow: .seconds(15 * 60), lockoutDuration: .seconds(30 * 60), messageOfTheDaySet: motd, maxSessionTTL: ttl,
                        lockingMode: locking, auditRetention: retention, roles: roles)
    }

    static func role(_ name: String, privileged: Bool = false, maxConnections: Int? = nil, idle: Duration? = nil,
                     configure: (inout RoleOptions) -> Void = { _ in }) -> Role {
        var options = RoleOptions()
        options.maxConnections = maxConnections
        options.clientIdleTimeout = idle.map { .after($0) }
        configure(&options)
        return Role(name: name, options: options, allow: RoleConditions(logins: privileged ? ["root"] : ["ubuntu"]))
    }

    /// The shipped catalog, read once for the verdict tests.
    static let shipped = Result { try ControlCatalog.load(directory: directory) }

    func status(_ id: String, _ facts: ComplianceFacts, at baseline: Baseline) throws -> ControlStatus {
        try XCTUnwrap(Self.shipped.get().evaluate(facts, baseline: baseline).first { $0.id == id }, "\(id) at \(baseline)")
    }

    func testAC10LimitsConnectionsPerRoleClassAtHigh() throws {
        let five = try status("AC-10", Self.facts([Self.role("dev", maxConnections: 5)]), at: .high)
        XCTAssertEqual(five.verdict, .notSatisfied)
        XCTAssertEqual(five.checks.first?.reasons, ["role 'dev' allows 5 connections per user at once; High allows 2: set spec.options.max_connections: 2"])
        XCTAssertEqual(try status("AC-10", Self.facts([Self.role("dev", maxConnections: 2), Self.role("ops", privileged: true, maxConnections: 3)]), at: .high).verdict,
                       .satisfied)
        let admin = try status("AC-10", Self.facts([Self.role("ops", privileged: true, maxConnections: 4)]), at: .high)
        XCTAssertEqual(admin.verdict, .notSatisfied)
        XCTAssertTrue(admin.checks[0].reasons[0].hasPrefix("role 'ops' (privileged: grants login root) allows 4"), admin.checks[0].reasons[0])
        let unlimited = try status("AC-10", Self.facts([Self.role("dev")]), at: .high)
        XCTAssertEqual(unlimited.verdict, .notSatisfied)
        XCTAssertTrue(unlimited.checks[0].reasons[0].contains("sets no max_connections"))
        XCTAssertEqual(try status("AC-10", Self.facts(), at: .high).verdict, .manual, "no roles: nothing to judge yet")
        let sudoers = Role(name: "sudo", options: { var o = RoleOptions(); o.maxConnections = 3; return o }(), allow: RoleConditions(hostSudoers: ["ALL=(ALL) ALL"]))
        XCTAssertEqual(try status("AC-10", Self.facts([sudoers]), at: .high).verdict, .satisfied, "host_sudoers makes a role privileged")

        let catalog = try ControlCatalog.load(directory: Self.directory)
        XCTAssertNil(catalog.evaluate(Self.facts(), baseline: .moderate).first { $0.id == "AC-10" }, "AC-10 is in High only")
    }

    func testSC10PrivilegedSessionsEndWithinTenMinutes() throws {
        let admin = try status("SC-10", Self.facts([Self.role("ops", privileged: true)]), at: .moderate)
        XCTAssertEqual(admin.verdict, .notSatisfied, "15m from the cluster is too long for privileged sessions")
        XCTAssertEqual(admin.checks[0].reasons, ["role 'ops' (privileged: grants login root): idle connections end after 15m (the cluster's client_idle_timeout); privileged sessions must end within 10m: set spec.options.client_idle_timeout: 10m"])
        XCTAssertEqual(try status("SC-10", Self.facts([Self.role("ops", privileged: true, idle: .seconds(600)), Self.role("dev")]), at: .high).verdict, .satisfied)
        XCTAssertEqual(try status("SC-10", Self.facts([Self.role("dev", idle: .seconds(3600))]), at: .high).verdict, .satisfied,
                       "a role cannot lengthen the cluster's timeout")
        let never = try status("SC-10", Self.facts([Self.role("dev")], idle: nil), at: .moderate)
        XCTAssertEqual(never.verdict, .notSatisfied)
        XCTAssertTrue(never.checks[0].reasons[0].contains("never ended"))
        XCTAssertEqual(try status("SC-10", Self.facts(idle: .seconds(20 * 60)), at: .moderate).verdict, .notSatisfied, "no roles: the cluster's value is judged")
    }

    func testFIPSOffFailsSC13() throws {
        let off = try status("SC-13", Self.facts(fips: false), at: .low)
        XCTAssertEqual(off.verdict, .notSatisfied)
        XCTAssertEqual(off.checks.first { $0.id == "fips" }?.verdict, .notSatisfied)
        XCTAssertTrue(off.checks.first { $0.id == "fips" }!.reasons[0].contains("set fips.enabled: yes"))
        let on = try status("SC-13", Self.facts(), at: .low)
        XCTAssertEqual(on.checks.first { $0.id == "fips" }?.verdict, .satisfied)
        XCTAssertEqual(on.verdict, .manual, "whether the module is CMVP-validated is for a person to check")
    }

    func testOtherChecksAnswerFromTheFacts() throws {
        XCTAssertEqual(try status("AC-8", Self.facts(motd: false), at: .low).checks[0].verdict, .notSatisfied)
        XCTAssertEqual(try status("AC-8", Self.facts(), at: .low).checks[0].verdict, .satisfied)
        XCTAssertEqual(try status("AU-11", Self.facts(retention: .seconds(30 * 86400)), at: .low).checks[0].reasons,
                       ["audit records are kept only 30d; keep them at least 90d online"])
        XCTAssertEqual(try status("AU-11", Self.facts(retention: .seconds(90 * 86400)), at: .low).checks[0].verdict, .satisfied)
        XCTAssertEqual(try status("AU-11", Self.facts(), at: .low).checks[0].verdict, .satisfied, "kept for ever")
        XCTAssertEqual(try status("AC-7", Self.facts(), at: .low).verdict, .satisfied)

        // IA-11: 12h certificates at Moderate and High, 30 days at Low.
        let long = try status("IA-11", Self.facts([Self.role("dev")], ttl: .seconds(24 * 3600)), at: .moderate)
        XCTAssertEqual(long.checks.first { $0.id == "certificate-lifetime" }?.verdict, .notSatisfied)
        XCTAssertNil(long.checks.first { $0.id == "certificate-lifetime-low" }, "the Low check does not apply at Moderate")
        let short = Self.role("dev") { $0.maxSessionTTL = .seconds(8 * 3600) }
        XCTAssertEqual(try status("IA-11", Self.facts([short], ttl: .seconds(24 * 3600)), at: .moderate).checks.first { $0.id == "certificate-lifetime" }?.verdict,
                       .satisfied, "every role shortens the cap")
        XCTAssertEqual(try status("IA-11", Self.facts([Self.role("dev")], ttl: .seconds(24 * 3600)), at: .low).checks.first { $0.id == "certificate-lifetime-low" }?.verdict,
                       .satisfied)

        // AC-12: certificate expiry, from the cluster or a role.
        XCTAssertEqual(try status("AC-12", Self.facts([Self.role("dev")], disconnectExpiredCert: false), at: .moderate).verdict, .notSatisfied)
        let keeps = Self.role("dev") { $0.disconnectExpiredCert = false }
        let ac12 = try status("AC-12", Self.facts([keeps]), at: .moderate)
        XCTAssertEqual(ac12.checks.first { $0.id == "certificate-expiry" }?.reasons,
                       ["role 'dev' sets disconnect_expired_cert: no, so its holders' connections outlive their certificate (unless another of their roles sets yes): remove it or set yes"])
        XCTAssertEqual(try status("AC-12", Self.facts([Self.role("dev")]), at: .moderate).verdict, .satisfied)

        // Locking mode and recording of privileged sessions.
        XCTAssertEqual(try status("AC-3", Self.facts([Self.role("dev")], locking: .bestEffort), at: .low).verdict, .notSatisfied)
        XCTAssertEqual(try status("AC-3", Self.facts([Self.role("dev") { $0.lock = .bestEffort }]), at: .low).verdict, .notSatisfied)
        XCTAssertEqual(try status("AC-3", Self.facts([Self.role("dev")]), at: .low).verdict, .satisfied)
        XCTAssertEqual(try status("AC-6(9)", Self.facts([Self.role("ops", privileged: true)]), at: .moderate).verdict, .notSatisfied)
        XCTAssertEqual(try status("AC-6(9)", Self.facts([Self.role("ops", privileged: true) { $0.recordSession = .strict }, Self.role("dev")]), at: .moderate).verdict,
                       .satisfied)

        // AU-14 is in no baseline, so it is reported at each, as selected by the organization.
        let au14 = try status("AU-14", Self.facts(), at: .low)
        XCTAssertFalse(au14.inBaseline)
        XCTAssertEqual(au14.verdict, .manual)
    }

    /// The shipped defaults and the example role, with a notice set: at High, only the known gaps fail.
    func testDefaultsWithTheExampleRoleFailOnlyTheKnownGapsAtHigh() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("examples/roles/access.yaml"), encoding: .utf8)
        let roles = try RoleYAML.parse(text, file: "access.yaml")
        let catalog = try ControlCatalog.load(directory: Self.directory)
        let statuses = catalog.evaluate(Self.facts(roles), baseline: .high)
        XCTAssertEqual(statuses.filter { $0.verdict == .notSatisfied }.map(\.id), ["IA-2", "IA-2(1)", "IA-2(2)", "IA-5"])
        XCTAssertEqual(statuses.first { $0.id == "AC-10" }?.verdict, .satisfied)
        XCTAssertEqual(statuses.first { $0.id == "SC-10" }?.verdict, .satisfied)
        for status in statuses {
            for check in status.checks { XCTAssertFalse(check.reasons.isEmpty, "\(status.id)/\(check.id) says why") }
        }
    }

    // MARK: The page and its references

    /// `make docs` (PORTCULLIS_WRITE_DOCS=1) rewrites the page; otherwise a stale page fails.
    func testTheControlsPageIsCurrent() throws {
        let rendered = try ControlCatalog.load(directory: Self.directory).markdown()
        if ProcessInfo.processInfo.environment["PORTCULLIS_WRITE_DOCS"] == "1" {
            try rendered.write(to: Self.page, atomically: true, encoding: .utf8)
        }
        let current = try String(contentsOf: Self.page, encoding: .utf8)
        XCTAssertEqual(current, rendered, "compliance/controls.md is stale: run 'make docs'")
    }

    /// Every test a control names as verifying it exists (a class, or a method in that class's file).
    func testEveryTestNamedAsVerificationExists() throws {
        let tests = Self.root.appendingPathComponent("Tests")
        var classes: [String: String] = [:]
        let files = FileManager.default.enumerator(atPath: tests.path)!.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
        for file in files {
            let source = try String(contentsOf: tests.appendingPathComponent(file), encoding: .utf8)
            for match in source.matches(of: /class (\w+)\s*:/) { classes[String(match.1), default: ""] += source }
        }
        for control in try ControlCatalog.load(directory: Self.directory).controls {
            for name in control.verifiedBy {
                let parts = name.split(separator: ".")
                guard let source = classes[String(parts[0])] else { XCTFail("\(control.id): no test class \(parts[0])"); continue }
                if parts.count == 2 { XCTAssertTrue(source.contains("func \(parts[1])("), "\(control.id): no test \(name)") }
            }
        }
    }
}
