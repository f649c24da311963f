import Audit
import Compliance
import Foundation
import Identity
import XCTest

final class AC10ReportTests: XCTestCase {
    typealias F = AC10Fixtures

    func report(_ stream: F.Stream, roles: [Role], from: Double = 0, to: Double = 100, baseline: AC10Baseline = .high) -> AC10Report {
        AC10Report.make(events: stream.events, roles: roles, window: F.window(from, to), baseline: baseline)
    }

    func user(_ report: AC10Report, _ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> AC10Report.UserFinding {
        try XCTUnwrap(report.users.first { $0.user == name }, "no finding for \(name): \(report.users.map(\.user))", file: file, line: line)
    }

    func testOverlappingConnectionsAboveTheLimitAreAViolation() throws {
        var stream = F.Stream()
        stream.connection("alice", "c1", 10, 40, roles: ["dev"], max: 2)
        stream.connection("alice", "c2", 20, 50, roles: ["dev"], max: 2)
        stream.connection("alice", "c3", 30, 35, roles: ["dev"], max: 2)
        stream.session("alice", "s1", 11, 39)
        stream.session("alice", "s2", 21, 49)
        let report = report(stream, roles: [try F.plainRole("dev", maxConnections: 2)])
        let alice = try user(report, "alice")
        XCTAssertEqual(alice.connections, AC10Report.Concurrency(peak: 3, peakAt: F.at(30), openAtEnd: 0))
        XCTAssertEqual(alice.sessions, AC10Report.Concurrency(peak: 2, peakAt: F.at(21), openAtEnd: 0))
        XCTAssertEqual(alice.violations, [AC10Report.Violation(from: F.at(30), to: F.at(35), concurrent: 3, limit: 2)])
        XCTAssertEqual(alice.verdict, .notSatisfied)
        XCTAssertEqual(alice.limit, 2)
        XCTAssertEqual(alice.roles, ["dev"])
        XCTAssertTrue(alice.reasons[0].contains("up to 3 connections open at once, above the limit of 2"), alice.reasons[0])
        XCTAssertEqual(report.roles.map(\.verdict), [.satisfied])
        XCTAssertEqual(report.control.verdict, .notSatisfied)
        XCTAssertTrue(report.control.reasons[0].contains("alice (1 time)"), report.control.reasons[0])
    }

    func testBackToBackConnectionsPeakAtOne() throws {
        var stream = F.Stream()
        stream.connection("bob", "c1", 10, 20, roles: ["one"], max: 1)
        stream.connection("bob", "c2", 20, 30, roles: ["one"], max: 1)
        stream.connection("bob", "c3", 30, 31, roles: ["one"], max: 1)
        let bob = try user(report(stream, roles: [try F.plainRole("one", maxConnections: 1)]), "bob")
        XCTAssertEqual(bob.connections, AC10Report.Concurrency(peak: 1, peakAt: F.at(10), openAtEnd: 0))
        XCTAssertEqual(bob.violations, [])
        XCTAssertEqual(bob.verdict, .satisfied)
    }

    func testConnectionsCrossingBothEdgesOfTheWindowCountFromItsStartToItsEnd() throws {
        var stream = F.Stream()
        stream.connection("carol", "long", -50, 150, roles: ["one"], max: 1)   // crosses both edges
        stream.connection("carol", "early", -10, 5, roles: ["one"], max: 1)    // open at the start
        stream.connection("carol", "late", 95, 120, roles: ["one"], max: 1)    // open at the end
        stream.connection("carol", "before", -30, 0, roles: ["one"], max: 1)   // ends as the window starts
        stream.connection("carol", "after", 100, 110, roles: ["one"], max: 1)  // starts as it ends
        let carol = try user(report(stream, roles: [try F.plainRole("one", maxConnections: 1)]), "carol")
        XCTAssertEqual(carol.connections, AC10Report.Concurrency(peak: 2, peakAt: F.at(0), openAtEnd: 0))
        XCTAssertEqual(carol.violations, [
            AC10Report.Violation(from: F.at(0), to: F.at(5), concurrent: 2, limit: 1),
            AC10Report.Violation(from: F.at(95), to: F.at(100), concurrent: 2, limit: 1),
        ])
    }

    func testAConnectionWithNoEndIsOpenAtTheEndOfTheData() throws {
        var stream = F.Stream()
        stream.connection("dave", "c1", 10, nil, roles: ["dev"], max: 2)
        stream.connection("dave", "c2", 90, 95, roles: ["dev"], max: 2)
        stream.connection("dave", "c3", nil, 15, roles: ["dev"], max: 2) // its start is before the data
        stream.session("dave", "s1", 12, nil)
        let dave = try user(report(stream, roles: [try F.plainRole("dev", maxConnections: 2)]), "dave")
        XCTAssertEqual(dave.connections, AC10Report.Concurrency(peak: 2, peakAt: F.at(10), openAtEnd: 1),
                       "c3 open from the window's start, c1 open until its end")
        XCTAssertEqual(dave.sessions, AC10Report.Concurrency(peak: 1, peakAt: F.at(12), openAtEnd: 1))
        XCTAssertEqual(dave.violations, [])
        XCTAssertTrue(dave.reasons.contains { $0.hasPrefix("1 connection with no connection.end in the data") }, "\(dave.reasons)")
        XCTAssertTrue(dave.reasons.contains { $0.hasPrefix("1 session with no session.end") }, "\(dave.reasons)")
    }

    func testRefusedConnectionsAreCountedInTheWindow() throws {
        var stream = F.Stream()
        stream.connection("erin", "c1", 10, 60, roles: ["one"], max: 1)
        stream.refusal("erin", 20, max: 1)
        stream.refusal("erin", 30, max: 1)
        stream.refusal("erin", -5, max: 1)  // before the window
        stream.refusal("erin", 100, max: 1) // at its end: outside [from, to)
        stream.refusal("frank", 50, max: 2) // refused, never admitted
        let report = report(stream, roles: [try F.plainRole("one", maxConnections: 1)])
        let erin = try user(report, "erin")
        XCTAssertEqual(erin.refusals.map(\.at), [F.at(20), F.at(30)], "oldest first, only those in the window")
        XCTAssertEqual(erin.refusals.first?.max, 1)
        XCTAssertEqual(erin.refusals.first?.reason, "the connection limit for user \"erin\" has been reached")
        XCTAssertNil(erin.refusals.first?.sessionID, "a whole connection refused")
        XCTAssertEqual(erin.verdict, .satisfied)
        XCTAssertTrue(erin.reasons.contains("2 refusals (session.rejected: a connection or a session channel) in the window."), "\(erin.reasons)")
        let frank = try user(report, "frank")
        XCTAssertEqual(frank.refusals.map(\.max), [2])
        XCTAssertEqual(frank.connections.peak, 0)
        XCTAssertNil(frank.limit)
    }

    func testAUserWhoseRolesChangeIsJudgedByTheLimitInForceAtEachMoment() throws {
        let wide = try F.plainRole("wide", maxConnections: 2), narrow = try F.plainRole("narrow", maxConnections: 1)
        var stream = F.Stream()
        stream.certificate("gina", roles: ["wide"], -60)
        stream.connection("gina", "c1", 10, 40, roles: ["wide"], max: 2)
        stream.connection("gina", "c2", 20, 30, roles: ["wide"], max: 2)   // two at once under limit 2: allowed
        stream.certificate("gina", roles: ["narrow"], 45)
        stream.connection("gina", "c3", 50, 80, roles: ["narrow"], max: 1)
        stream.connection("gina", "c4", 60, 70, roles: ["narrow"], max: 1) // two at once under limit 1: a violation
        let gina = try user(report(stream, roles: [wide, narrow]), "gina")
        XCTAssertEqual(gina.violations, [AC10Report.Violation(from: F.at(60), to: F.at(70), concurrent: 2, limit: 1)])
        XCTAssertEqual(gina.verdict, .notSatisfied)
        XCTAssertEqual(gina.roles, ["narrow"])
        XCTAssertEqual(gina.limit, 1)
        let change = try XCTUnwrap(gina.reasons.first { $0.hasPrefix("Roles changed during the window") }, "\(gina.reasons)")
        XCTAssertTrue(change.contains("wide (limit 2) from 2025-06-15T15:16:40.000Z; narrow (limit 1) from 2025-06-15T15:56:40.000Z"), change)

        // A connection admitted under the wider roles still open when the narrower ones arrive: from then on, two is too many.
        var overlapping = F.Stream()
        overlapping.connection("gina", "c1", 10, 90, roles: ["wide"], max: 2)
        overlapping.connection("gina", "c2", 20, 30, roles: ["wide"], max: 2)
        overlapping.connection("gina", "c3", 50, 60, roles: ["narrow"], max: 1)
        XCTAssertEqual(try user(report(overlapping, roles: [wide, narrow]), "gina").violations,
                       [AC10Report.Violation(from: F.at(50), to: F.at(60), concurrent: 2, limit: 1)])
    }

    func testWithoutMaxTheLimitComesFromTheConnectionsRolesThenTheCertificate() throws {
        var stream = F.Stream()
        stream.certificate("hal", roles: ["one"], -10)
        for (id, start) in [("c1", 10.0), ("c2", 15.0)] {
            var event = AuditEvent.connectionStart(F.fields("hal"), id: id, roles: ["two"], max: 0)
            event["max"] = nil
            stream.append(event, at: start)
            var roleless = AuditEvent.connectionStart(F.fields("hal"), id: id + "x", roles: [], max: 0)
            roleless["max"] = nil
            roleless["roles"] = nil
            stream.append(roleless, at: start + 50)
        }
        let hal = try user(report(stream, roles: [try F.plainRole("one", maxConnections: 1), try F.plainRole("two", maxConnections: 2)]), "hal")
        XCTAssertEqual(hal.violations, [AC10Report.Violation(from: F.at(60), to: F.at(100), concurrent: 4, limit: 1)],
                       "from 10 the roles named (two, limit 2) apply; from 60, with no roles named, the certificate's (one, limit 1)")
        XCTAssertEqual(hal.roles, ["one"])
        XCTAssertEqual(hal.limit, 1)
    }

    func testAPrivilegedRoleIsJudgedAgainstThePrivilegedNumber() throws {
        let root = try F.role("""
            kind: role
            metadata: {name: admin}
            spec:
              options: {max_connections: 3}
              allow: {logins: [root, ubuntu]}
            """)
        let sudo = try F.role("""
            kind: role
            metadata: {name: sudoer}
            spec:
              options: {max_connections: 4}
              allow: {logins: [ops], host_sudoers: ["ALL=(ALL) NOPASSWD: ALL"]}
            """)
        let deniedRoot = try F.role("""
            kind: role
            metadata: {name: no-root}
            spec:
              options: {max_connections: 3}
              allow: {logins: [root, ubuntu]}
              deny: {logins: [root]}
            """)
        var stream = F.Stream()
        stream.connection("ivan", "c1", 10, 50, roles: ["admin"], max: 3)
        stream.connection("ivan", "c2", 20, 50, roles: ["admin"], max: 3)
        stream.connection("ivan", "c3", 30, 50, roles: ["admin"], max: 3)
        let report = report(stream, roles: [sudo, root, deniedRoot])
        XCTAssertEqual(report.roles.map(\.name), ["admin", "no-root", "sudoer"], "sorted by name")
        let admin = report.roles[0]
        XCTAssertEqual(admin.privileged, true)
        XCTAssertEqual(admin.baselineLimit, 3)
        XCTAssertEqual(admin.maxConnections, 3)
        XCTAssertEqual(admin.verdict, .satisfied)
        XCTAssertEqual(admin.reasons, [
            "Role 'admin' grants logins (root, ubuntu) with max_connections 3, within the 3 concurrent sessions FedRAMP Rev5 High allows for privileged access.",
            "Privileged: it grants login root.",
        ])
        XCTAssertEqual(report.roles[1].privileged, false, "root is denied by the role itself")
        XCTAssertEqual(report.roles[1].baselineLimit, 2)
        XCTAssertEqual(report.roles[1].verdict, .notSatisfied)
        XCTAssertEqual(report.roles[2].privileged, true)
        XCTAssertEqual(report.roles[2].verdict, .notSatisfied)
        XCTAssertEqual(report.roles[2].reasons[0], "Role 'sudoer' grants logins (ops) with max_connections 4, above the 3 concurrent sessions"
                       + " FedRAMP Rev5 High allows for privileged access. Set spec.options.max_connections to 3 or less in role 'sudoer'.")
        let ivan = try user(report, "ivan")
        XCTAssertTrue(ivan.privileged)
        XCTAssertEqual(ivan.connections.peak, 3)
        XCTAssertEqual(ivan.verdict, .satisfied, "three at once is within a privileged limit of 3")
    }

    func testARoleAllowingFiveConnectionsIsAboveTheHighBaseline() throws {
        let roles = [
            try F.plainRole("five", maxConnections: 5),
            try F.plainRole("unlimited", maxConnections: 0),
            try F.plainRole("unset", maxConnections: nil),
            try F.plainRole("two", maxConnections: 2),
            try F.role("kind: role\nmetadata: {name: limits-only}\nspec: {options: {max_connections: 9}}\n"),
        ]
        for baseline in AC10Baseline.allCases {
            let report = report(F.Stream(), roles: roles, baseline: baseline)
            let byName = Dictionary(uniqueKeysWithValues: report.roles.map { ($0.name, $0) })
            XCTAssertEqual(byName["five"]?.verdict, .notSatisfied)
            XCTAssertEqual(byName["five"]?.baselineLimit, 2)
            XCTAssertEqual(byName["five"]?.maxConnections, 5)
            XCTAssertEqual(byName["five"]?.reasons.first, "Role 'five' grants logins (ubuntu) with max_connections 5, above the 2 concurrent"
                           + " sessions \(baseline.title) allows for non-privileged access. Set spec.options.max_connections to 2 or less in role 'five'.")
            XCTAssertEqual(byName["unlimited"]?.verdict, .notSatisfied)
            XCTAssertEqual(byName["unset"]?.verdict, .notSatisfied)
            XCTAssertNil(byName["unset"]?.maxConnections)
            XCTAssertEqual(byName["two"]?.verdict, .satisfied)
            XCTAssertEqual(byName["limits-only"]?.verdict, .satisfied, "grants no logins")
            XCTAssertEqual(report.control.verdict, .notSatisfied)
            XCTAssertEqual(report.control.reasons[0], "Roles that grant logins allow more concurrent connections than \(baseline.title)'s"
                           + " ac-10_odp.02 (three (3) sessions for privileged access and two (2) sessions for non-privileged access),"
                           + " or no limit: five, unlimited, unset. Lower their max_connections.")
        }
    }

    func testWhenNothingFailsTheControlIsLeftToAPersonForTheAccountTypes() throws {
        var stream = F.Stream()
        stream.connection("judy", "c1", 10, 20, roles: ["two"], max: 2)
        let report = report(stream, roles: [try F.plainRole("two", maxConnections: 2)])
        XCTAssertEqual(report.users.map(\.verdict), [.satisfied])
        XCTAssertEqual(report.control.verdict, .manual)
        XCTAssertTrue(report.control.reasons.contains { $0.hasPrefix("ac-10_odp.01 (the accounts and account types the limit applies to) is left to the CSP") },
                      "\(report.control.reasons)")
    }

    func testRolesAndSessionsTheReportCannotJudgeAreLeftToAPerson() throws {
        var stream = F.Stream()
        stream.connection("kim", "c1", 10, 20, roles: ["gone"], max: 1)
        stream.session("leo", "s1", 10, 20) // a log from before connection events
        let report = report(stream, roles: [try F.plainRole("two", maxConnections: 2)])
        let gone = try XCTUnwrap(report.roles.first { $0.name == "gone" })
        XCTAssertEqual(gone.verdict, .manual)
        XCTAssertNil(gone.privileged)
        XCTAssertTrue(gone.reasons[0].contains("held in the audit events (by kim)"), gone.reasons[0])
        let kim = try user(report, "kim")
        XCTAssertEqual(kim.limit, 1, "the limit the connection was admitted under")
        XCTAssertEqual(kim.verdict, .satisfied)
        XCTAssertTrue(kim.reasons.contains { $0.hasPrefix("kim holds roles the report was not given (gone)") }, "\(kim.reasons)")
        XCTAssertEqual(try user(report, "leo").verdict, .manual)
        XCTAssertEqual(report.control.verdict, .manual)
    }

    func testASessionEndsWhenItStoppedNotWhenItsEventWasWritten() throws {
        var stream = F.Stream()
        stream.session("mia", "s1", 10, 20, writtenLater: 15)
        stream.session("mia", "s2", 25, 30)
        XCTAssertEqual(try user(report(stream, roles: []), "mia").sessions.peak, 1)
    }

    func testTheSameInputGivesTheSameBytes() throws {
        var stream = F.Stream()
        for (index, user) in ["zoe", "adam", "maya"].enumerated() {
            stream.certificate(user, roles: ["two", "admin"], -5)
            stream.connection(user, "\(user)-1", Double(index), 60, roles: ["two", "admin"], max: 2)
            stream.connection(user, "\(user)-2", 10, 70, roles: ["two", "admin"], max: 2)
            stream.connection(user, "\(user)-3", 20, nil, roles: ["two"], max: 2)
            stream.refusal(user, 30, max: 2)
            stream.session(user, "\(user)-s", 12, 50)
        }
        let roles = [try F.plainRole("two", maxConnections: 2), try F.plainRole("admin", maxConnections: 5), try F.plainRole("other", maxConnections: nil)]
        let first = try report(stream, roles: roles).json()
        let second = try report(stream, roles: roles).json()
        XCTAssertEqual(first, second)
        var shuffled = stream
        var generator = SeededGenerator(seed: 42)
        shuffled.events.shuffle(using: &generator)
        XCTAssertEqual(try report(shuffled, roles: roles.reversed()).json(), first, "the order of events and roles does not matter")
        let decoded = try AC10Report.decode(json: first)
        XCTAssertEqual(decoded.users.map(\.user), ["adam", "maya", "zoe"])
        XCTAssertEqual(decoded.roles.map(\.name), ["admin", "other", "two"])
        XCTAssertEqual(decoded, try report(stream, roles: roles))
    }
}

/// SplitMix64: a shuffle that is the same on every run.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
