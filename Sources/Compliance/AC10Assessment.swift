import Audit
import Foundation
import Identity

/// The verdicts and the sentences behind them, for roles, users and the control.
enum AC10Assessment {
    typealias Verdict = AC10Report.Verdict

    /// One finding per role given, and one (`manual`) per role the events name that was not given.
    static func roles(_ roles: [Role], referenced: [String: Set<String>], baseline: AC10Baseline) -> [AC10Report.RoleFinding] {
        let given = Set(roles.map(\.name))
        var findings = roles.map { role(on: $0, baseline: baseline) }
        for (name, holders) in referenced where !given.contains(name) {
            findings.append(AC10Report.RoleFinding(
                name: name, privileged: nil, maxConnections: nil, baselineLimit: nil, verdict: .manual,
                reasons: ["Role '\(name)' is held in the audit events (by \(holders.sorted().joined(separator: ", "))) but was not among the roles"
                          + " given to the report (deleted or renamed since?): check its max_connections and logins by hand, for example in its"
                          + " role.created and role.updated events."]))
        }
        // Two definitions of one name (a caller's mistake) keep their input order: a stable sort.
        return findings.enumerated().sorted { ($0.element.name, $0.offset) < ($1.element.name, $1.offset) }.map(\.element)
    }

    static func role(on role: Role, baseline: AC10Baseline) -> AC10Report.RoleFinding {
        let privileged = role.isPrivileged, number = baseline.limit(privileged: privileged), kind = baseline.kind(privileged: privileged)
        let logins = role.grantedLogins
        let grants = "Role '\(role.name)' grants logins (\(logins.joined(separator: ", ")))"
        let fix = "Set spec.options.max_connections to \(number) or less in role '\(role.name)'."
        let verdict: Verdict, reason: String
        switch role.options.maxConnections {
        case _ where logins.isEmpty:
            (verdict, reason) = (.satisfied, "Role '\(role.name)' grants no logins, so no connection is made with it alone; held with other"
                                 + " roles it can only lower their limit (the smallest non-zero max_connections applies).")
        case nil:
            (verdict, reason) = (.notSatisfied, "\(grants) and sets no max_connections, so its holders have no limit unless another role"
                                 + " they hold sets one; \(baseline.title) allows \(number) concurrent sessions for \(kind) access. \(fix)")
        case 0?:
            (verdict, reason) = (.notSatisfied, "\(grants) with max_connections 0 (unlimited); \(baseline.title) allows \(number) concurrent"
                                 + " sessions for \(kind) access. \(fix)")
        case let limit? where limit > number:
            (verdict, reason) = (.notSatisfied, "\(grants) with max_connections \(limit), above the \(number) concurrent sessions"
                                 + " \(baseline.title) allows for \(kind) access. \(fix)")
        case let limit?:
            (verdict, reason) = (.satisfied, "\(grants) with max_connections \(limit), within the \(number) concurrent sessions"
                                 + " \(baseline.title) allows for \(kind) access.")
        }
        return AC10Report.RoleFinding(name: role.name, privileged: privileged, maxConnections: role.options.maxConnections,
                                      baselineLimit: number, verdict: verdict, reasons: [reason, role.privilegeReason])
    }

    /// One finding per user with a connection, a session or a refusal in the window, sorted by name.
    static func users(_ evidence: AC10Evidence, baseline: AC10Baseline, series: Bool = false) -> [AC10Report.UserFinding] {
        let window = evidence.window
        let connections = ConcurrencyTimeline.summarize(evidence.connections, limits: evidence.limitChanges, from: window.from, to: window.to,
                                                        series: series)
        let sessions = ConcurrencyTimeline.summarize(evidence.sessions, from: window.from, to: window.to)
        var findings: [AC10Report.UserFinding] = []
        for (key, name) in evidence.users.enumerated() {
            let connection = connections[key] ?? .init(), session = sessions[key] ?? .init()
            let refusals = (evidence.refusals[key] ?? []).sorted { $0.at < $1.at }
            guard connection.peak > 0 || session.peak > 0 || !refusals.isEmpty else { continue }
            findings.append(user(name, key: key, evidence: evidence, connection: connection, session: session, refusals: refusals,
                                 baseline: baseline))
        }
        return findings.sorted { $0.user < $1.user }
    }

    static func user(_ name: String, key: Int, evidence: AC10Evidence, connection: ConcurrencyTimeline.Summary,
                     session: ConcurrencyTimeline.Summary, refusals: [AC10Report.Refusal], baseline: AC10Baseline) -> AC10Report.UserFinding {
        let last = evidence.sighting(key, before: evidence.window.to)
        let roleNames = last?.roleSet.map { evidence.roleSets[$0] } ?? []
        let limit = last.flatMap { $0.limit ?? evidence.limit(of: $0.roleSet) }
        let privileged = roleNames.contains { evidence.definitions[$0]?.isPrivileged == true }
        let violations = connection.violations

        var verdict = Verdict.satisfied
        var reasons: [String] = []
        if !violations.isEmpty {
            verdict = .notSatisfied
            for violation in violations.prefix(5) {
                reasons.append("From \(AuditTime.format(violation.from)) to \(AuditTime.format(violation.to)) \(name) had up to"
                               + " \(violation.concurrent) connections open at once, above the limit of \(violation.limit) in force then.")
            }
            if violations.count > 5 { reasons.append("… and \(violations.count - 5) more such stretches.") }
            let first = violations[0]
            reasons.append("Find how the connections were admitted over the limit (for the first: pcctl audit search --event connection.start"
                           + " --user \(name) --to \(AuditTime.format(first.from)), and the nodes they name); max_connections is enforced at"
                           + " admission, so a node that took no lease or events from a node not counting are the likely causes.")
        } else if connection.peak == 0, session.peak > 0 {
            verdict = .manual
            reasons.append("\(name) had sessions in the window but no connection events, so connections cannot be counted (a log from"
                           + " before connection.start and connection.end were written, or a connection spanning all the data):"
                           + " judge this account from other evidence.")
        } else if let unknown = evidence.unknownLimits[key] {
            verdict = .manual
            reasons.append("\(plural(unknown, "connection")) of \(name)'s name no max and roles the report was not given, so the limit"
                           + " they were admitted under is unknown: give the report those roles, or check them by hand.")
        } else if connection.peak > 0 {
            reasons.append("At most \(plural(connection.peak, "connection")) open at once (first at \(AuditTime.format(connection.peakAt!))),"
                           + " never above the limit in force.")
        } else {
            reasons.append("No connection was open in the window.")
        }

        let number = baseline.limit(privileged: privileged)
        if let limit, connection.peak > 0, limit == 0 || limit > number {
            let held = roleNames.isEmpty ? "" : " (roles \(roleNames.joined(separator: ", ")))"
            reasons.append("\(name)'s limit\(held) is \(limit == 0 ? "unlimited" : String(limit)), above the \(number) \(baseline.title) allows for"
                           + " \(baseline.kind(privileged: privileged)) access: see the role verdicts.")
        }
        if limit == nil, connection.peak > 0 {
            reasons.append("The roles \(name) held at the window's end, and so the limit, are not known from the events.")
        }
        let unknownRoles = roleNames.filter { evidence.definitions[$0] == nil }
        if !unknownRoles.isEmpty {
            reasons.append("\(name) holds roles the report was not given (\(unknownRoles.joined(separator: ", "))): whether this account is"
                           + " privileged is not known; see those roles' findings.")
        }
        if let changes = roleChanges(key, evidence: evidence) { reasons.append(changes) }
        if connection.openAtEnd > 0 {
            reasons.append("\(plural(connection.openAtEnd, "connection")) with no connection.end in the data: still open when the data ends,"
                           + " or the end was lost; counted as open until the window's end.")
        }
        if session.openAtEnd > 0 {
            reasons.append("\(plural(session.openAtEnd, "session")) with no session.end in the data; counted as open until the window's end.")
        }
        if !refusals.isEmpty {
            reasons.append("\(plural(refusals.count, "refusal")) (session.rejected: a connection or a session channel) in the window.")
        }
        if let unusable = evidence.unusable[name] {
            reasons.append("\(plural(unusable, "connection or session event")) without an id or a time, not counted.")
        }
        return AC10Report.UserFinding(
            user: name, roles: roleNames, privileged: privileged, limit: limit,
            connections: AC10Report.Concurrency(peak: connection.peak, peakAt: connection.peakAt, openAtEnd: connection.openAtEnd),
            sessions: AC10Report.Concurrency(peak: session.peak, peakAt: session.peakAt, openAtEnd: session.openAtEnd),
            violations: violations, refusals: refusals, verdict: verdict, reasons: reasons,
            openSeries: connection.openSeries, limitSeries: connection.limitSeries)
    }

    static func plural(_ count: Int, _ noun: String) -> String { count == 1 ? "1 \(noun)" : "\(count) \(noun)s" }

    /// "Roles changed during the window: …", when the connections show more than one role list or limit.
    static func roleChanges(_ key: Int, evidence: AC10Evidence) -> String? {
        var steps: [(time: Double, roleSet: Int?, limit: Int?)] = []
        for sighting in evidence.connectionSightings(key) {
            let limit = sighting.limit ?? evidence.limit(of: sighting.roleSet)
            if let last = steps.last, last.roleSet == sighting.roleSet, last.limit == limit { continue }
            steps.append((sighting.time, sighting.roleSet, limit))
        }
        guard steps.count > 1 else { return nil }
        let from = evidence.window.from.timeIntervalSinceReferenceDate
        let described = steps.map { step in
            let roles = step.roleSet.map { evidence.roleSets[$0].joined(separator: ", ") } ?? "unknown roles"
            let limit = step.limit.map { $0 == 0 ? "unlimited" : "limit \($0)" } ?? "limit unknown"
            let since = step.time <= from ? "from the window's start" : "from \(AuditTime.format(Date(timeIntervalSinceReferenceDate: step.time)))"
            return "\(roles) (\(limit)) \(since)"
        }
        return "Roles changed during the window: \(described.joined(separator: "; ")). Each moment is judged by the limit in force then"
            + " (the max each connection was admitted under)."
    }

    /// `uncounted`: connection and session events without a user, an id or a time.
    static func control(roles: [AC10Report.RoleFinding], users: [AC10Report.UserFinding], uncounted: Int, window: (from: Date, to: Date),
                        baseline: AC10Baseline) -> AC10Report.Finding {
        var reasons: [String] = []
        let failingRoles = roles.filter { $0.verdict == .notSatisfied }.map(\.name)
        let failingUsers = users.filter { $0.verdict == .notSatisfied }
        if !failingRoles.isEmpty {
            reasons.append("Roles that grant logins allow more concurrent connections than \(baseline.title)'s ac-10_odp.02 (\(baseline.statement)),"
                           + " or no limit: \(failingRoles.joined(separator: ", ")). Lower their max_connections.")
        }
        if !failingUsers.isEmpty {
            let named = failingUsers.map { "\($0.user) (\($0.violations.count) time\($0.violations.count == 1 ? "" : "s"))" }
            reasons.append("Users held more connections at once than their limit: \(named.joined(separator: ", ")). See each user's reasons.")
        }
        let verdict: Verdict = failingRoles.isEmpty && failingUsers.isEmpty ? .manual : .notSatisfied
        if verdict == .manual {
            reasons.append("Every role given that grants logins limits connections within \(baseline.title)'s \(baseline.statement), and no"
                           + " user the events let the report judge held more connections than their limit; what remains is for a person, below.")
        }
        let privileged = roles.filter { $0.privileged == true }.map(\.name)
        reasons.append("ac-10_odp.01 (the accounts and account types the limit applies to) is left to the CSP, so it is judged by hand:"
                       + " confirm that the SSP names these account types, and that the privileged roles here (those granting login root or"
                       + " host_sudoers entries: \(privileged.isEmpty ? "none" : privileged.joined(separator: ", "))) are the privileged ones it names.")
        let manualRoles = roles.filter { $0.verdict == .manual }.map(\.name)
        if !manualRoles.isEmpty { reasons.append("Roles to check by hand (named in the events, not given): \(manualRoles.joined(separator: ", ")).") }
        let manualUsers = users.filter { $0.verdict == .manual }.map(\.user)
        if !manualUsers.isEmpty { reasons.append("Users to check by hand: \(manualUsers.joined(separator: ", ")).") }
        if uncounted > 0 {
            reasons.append("\(plural(uncounted, "connection or session event")) without a user, an id or a time could not be counted: the"
                           + " log's integrity (pcctl audit verify) and the nodes that wrote them are worth a look.")
        }
        if window.from >= window.to {
            reasons.append("The window is empty (its start is not before its end): no connection was counted.")
        } else if users.isEmpty {
            reasons.append("No connection, session or refusal was recorded from \(AuditTime.format(window.from)) to \(AuditTime.format(window.to)).")
        }
        reasons.append("Counted: each user's SSH connections across the cluster (connection.start and connection.end, what max_connections"
                       + " limits) from \(AuditTime.format(window.from)) to \(AuditTime.format(window.to)); session channels per connection"
                       + " (max_sessions) are shown for information.")
        if baseline == .moderateRev4 {
            reasons.append("FedRAMP Rev4 is superseded; the Rev5 Moderate baseline does not include AC-10.")
        }
        return AC10Report.Finding(verdict: verdict, reasons: reasons)
    }
}
