import Audit
import Foundation

extension AC10Report {
    /// `--format html`: the verdict and summary first, then the roles and users (sortable), a
    /// chart per user, and every stretch above a limit. Make the report with `series: true` for
    /// the charts to show the counts over time (without, they show the limit alone).
    public func html(cluster: String, generated: Date) -> String {
        let e = ReportHTML.escape
        let days = (window.to.timeIntervalSince(window.from) / 86400 * 10).rounded() / 10
        var body = "<header>\n<h1>AC-10 Concurrent Session Control</h1>\n<dl class=\"meta\">\n"
            + ReportHTML.metaEntry("Window", "\(ReportHTML.time(window.from)) to \(ReportHTML.time(window.to)) (UTC, \(days) days; end excluded)")
            + ReportHTML.metaEntry("Baseline", "\(e(baseline.title)): ac-10_odp.02 = \(e(baseline.statement))")
            + ReportHTML.metaEntry("Source", "audit log of cluster <code>\(e(cluster))</code>, \(roles.count) roles")
            + ReportHTML.metaEntry("Generated", ReportHTML.generated(generated))
            + "</dl>\n<p class=\"overall\">Overall verdict: \(ReportHTML.badge(control.verdict.controlVerdict))</p>\n</header>\n"
        let links = users.enumerated().map { "<a href=\"#u\($0.offset + 1)\">\(e($0.element.user))</a>" }.joined(separator: ", ")
        body += "<nav aria-label=\"Contents\"><ul><li><a href=\"#summary\">Summary</a></li><li><a href=\"#roles\">Roles</a></li>"
            + "<li><a href=\"#users\">Users</a></li><li><a href=\"#charts\">Connections over time</a>\(links.isEmpty ? "" : ": " + links)</li>"
            + "<li><a href=\"#intervals\">Over-limit intervals</a></li></ul></nav>\n<main>\n"
        body += "<section id=\"summary\">\n<h2>Summary</h2>\n<p>Control AC-10: \(ReportHTML.badge(control.verdict.controlVerdict))</p>\n"
            + ReportHTML.reasons(control.reasons) + "\n</section>\n"

        body += "<section id=\"roles\">\n<h2>Roles</h2>\n<table class=\"sortable\">\n<caption>Each role&#39;s max_connections against the baseline</caption>\n"
            + "<thead><tr><th scope=\"col\" aria-sort=\"ascending\">Role</th><th scope=\"col\">Privileged</th><th scope=\"col\" class=\"n\">max_connections</th>"
            + "<th scope=\"col\" class=\"n\">Baseline limit</th><th scope=\"col\">Verdict</th><th scope=\"col\" class=\"wide\">Reasons</th></tr></thead>\n<tbody>\n"
        for role in roles {
            let limit: (key: String, text: String) = switch role.maxConnections {
            case nil: ("-1", "not set")
            case 0?: ("Infinity", "0 (unlimited)")
            case let value?: (String(value), String(value))
            }
            body += "<tr><th scope=\"row\">\(e(role.name))</th><td>\(role.privileged.map { $0 ? "yes" : "no" } ?? "—")</td>"
                + "<td class=\"n\" data-sort=\"\(limit.key)\">\(limit.text)</td>"
                + "<td class=\"n\" data-sort=\"\(role.baselineLimit ?? -1)\">\(role.baselineLimit.map(String.init) ?? "—")</td>"
                + ReportHTML.verdictCell(role.verdict.controlVerdict) + "<td>\(ReportHTML.reasons(role.reasons))</td></tr>\n"
        }
        body += "</tbody>\n</table>\n</section>\n"

        body += "<section id=\"users\">\n<h2>Users</h2>\n<table class=\"sortable\">\n<caption>Each user with a connection, session or refusal in the window</caption>\n"
            + "<thead><tr><th scope=\"col\" aria-sort=\"ascending\">User</th><th scope=\"col\">Roles (at end)</th><th scope=\"col\" class=\"n\">Limit (at end)</th>"
            + "<th scope=\"col\" class=\"n\">Connection peak</th><th scope=\"col\">Peak at (UTC)</th><th scope=\"col\" class=\"n\">Session peak</th>"
            + "<th scope=\"col\" class=\"n\">Over-limit intervals</th><th scope=\"col\" class=\"n\">Refusals</th><th scope=\"col\">Verdict</th></tr></thead>\n<tbody>\n"
        for (index, user) in users.enumerated() {
            let limit: (key: String, text: String) = switch user.limit {
            case nil: ("-1", "unknown")
            case 0?: ("Infinity", "unlimited")
            case let value?: (String(value), String(value))
            }
            body += "<tr><th scope=\"row\" data-sort=\"\(e(user.user))\"><a href=\"#u\(index + 1)\">\(e(user.user))</a></th>"
                + "<td>\(user.roles.isEmpty ? "—" : e(user.roles.joined(separator: ", ")))</td><td class=\"n\" data-sort=\"\(limit.key)\">\(limit.text)</td>"
                + "<td class=\"n\">\(user.connections.peak)</td>\(ReportHTML.timeCell(user.connections.peakAt))<td class=\"n\">\(user.sessions.peak)</td>"
                + "<td class=\"n\">\(user.violations.count)</td><td class=\"n\">\(user.refusals.count)</td>"
                + ReportHTML.verdictCell(user.verdict.controlVerdict) + "</tr>\n"
        }
        body += "</tbody>\n</table>\n</section>\n"

        body += "<section id=\"charts\">\n<h2>Connections over time</h2>\n"
        if users.isEmpty { body += "<p>No user connected in the window.</p>\n" }
        for (index, user) in users.enumerated() {
            let chart = ConcurrencyChart(user: user.user, id: "u\(index + 1)", window: window, open: user.openSeries, limits: user.limitSeries,
                                         violations: user.violations, peak: user.connections.peak, peakAt: user.connections.peakAt)
            body += "<figure id=\"u\(index + 1)\">\n<figcaption>\(e(user.user)) — \(ReportHTML.badge(user.verdict.controlVerdict))</figcaption>\n"
                + chart.svg() + "\n<ul class=\"legend\" aria-hidden=\"true\"><li><i class=\"lg-conn\"></i>open connections</li>"
                + "<li><i class=\"lg-limit\"></i>limit in force (max_connections)</li><li><i class=\"lg-over\"></i>&#9660; above the limit</li>"
                + "<li>&#9675; first peak</li></ul>\n" + ReportHTML.reasons(user.reasons) + Self.refusals(user.refusals) + "\n</figure>\n"
        }
        body += "</section>\n"

        body += "<section id=\"intervals\">\n<h2>Over-limit intervals</h2>\n"
        let violations = users.flatMap { user in user.violations.map { (user: user.user, violation: $0) } }
        if violations.isEmpty {
            body += "<p>No user had more connections open than the limit in force.</p>\n"
        } else {
            body += "<table class=\"sortable\">\n<caption>Stretches where a user had more connections open than the limit in force</caption>\n"
                + "<thead><tr><th scope=\"col\" aria-sort=\"ascending\">User</th><th scope=\"col\">From (UTC)</th><th scope=\"col\">To (UTC)</th>"
                + "<th scope=\"col\" class=\"n\">Duration</th><th scope=\"col\" class=\"n\">Open at most</th><th scope=\"col\" class=\"n\">Limit then</th></tr></thead>\n<tbody>\n"
            for (user, violation) in violations.prefix(Self.maximumRows) {
                let seconds = Int(violation.to.timeIntervalSince(violation.from).rounded())
                body += "<tr><th scope=\"row\">\(e(user))</th>\(ReportHTML.timeCell(violation.from))\(ReportHTML.timeCell(violation.to))"
                    + "<td class=\"n\" data-sort=\"\(seconds)\">\(seconds / 3600)h \(seconds / 60 % 60)m \(seconds % 60)s</td>"
                    + "<td class=\"n\">\(violation.concurrent)</td><td class=\"n\">\(violation.limit)</td></tr>\n"
            }
            body += "</tbody>\n</table>\n"
            if violations.count > Self.maximumRows {
                body += "<p>… and \(violations.count - Self.maximumRows) more intervals: see the JSON form.</p>\n"
            }
        }
        body += "</section>\n</main>\n<footer><p>Generated by <code>pcctl report ac-10 --format html</code>. The machine-readable record is"
            + " <code>--format json</code> (compliance/schemas/ac-10-report.json). Times are UTC. This file is self-contained: it loads nothing"
            + " from the network.</p></footer>\n"
        return ReportHTML.page(title: "AC-10 Concurrent Session Control — \(baseline.title) — \(AuditTime.format(window.from).prefix(10)) to "
                                   + "\(AuditTime.format(window.to).prefix(10))", body: body)
    }
}

extension AC10Report {
    /// Rows a table shows before pointing at the JSON form, so a page stays printable.
    static let maximumRows = 1000

    static func refusals(_ refusals: [Refusal]) -> String {
        guard !refusals.isEmpty else { return "" }
        let shown = refusals.prefix(20).map { refusal in
            "<li>\(ReportHTML.time(refusal.at))\(refusal.max > 0 ? " (limit \(refusal.max))" : ""): \(ReportHTML.escape(refusal.reason))</li>"
        }.joined()
        return "<details><summary>Refusals (\(refusals.count))</summary><ul class=\"reasons\">\(shown)"
            + (refusals.count > 20 ? "<li>… and \(refusals.count - 20) more: see the JSON form.</li>" : "") + "</ul></details>"
    }
}

extension FedRAMPReport {
    /// `--format html`: the verdict and counts first, then one sortable row per control with its
    /// checks, reasons and evidence counts, then the crypto boundary.
    public func html(cluster: String, generated: Date) -> String {
        let e = ReportHTML.escape
        var body = "<header>\n<h1>FedRAMP control status</h1>\n<dl class=\"meta\">\n"
            + ReportHTML.metaEntry("Baseline", "FedRAMP Rev5 \(baseline.title) (\(controls.count) controls"
                                   + (controls.contains { !$0.inBaseline } ? ", including those in no baseline, selected by the organization)" : ")"))
            + ReportHTML.metaEntry("Window", "\(ReportHTML.time(window.from)) to \(ReportHTML.time(window.to)) (UTC; for the event counts)")
            + ReportHTML.metaEntry("Source", "configuration and roles of cluster <code>\(e(cluster))</code>; audit log for the event counts")
            + ReportHTML.metaEntry("Generated", ReportHTML.generated(generated))
            + "</dl>\n<p class=\"overall\">Overall verdict: \(ReportHTML.badge(summary.verdict))</p>\n"
            + "<p>\(ReportHTML.badge(.notSatisfied)) \(summary.notSatisfied) controls &nbsp; \(ReportHTML.badge(.manual)) \(summary.manual) controls &nbsp; "
            + "\(ReportHTML.badge(.satisfied)) \(summary.satisfied) controls</p>\n</header>\n<main>\n"
        body += "<section id=\"controls\">\n<h2>Controls</h2>\n<table class=\"sortable\">\n<caption>Each control&#39;s checks against the configuration"
            + " and roles, with the audit events that show it working</caption>\n<thead><tr><th scope=\"col\" aria-sort=\"ascending\">Control</th>"
            + "<th scope=\"col\">Title</th><th scope=\"col\">Verdict</th><th scope=\"col\" class=\"wide\">Checks and reasons</th>"
            + "<th scope=\"col\">Events in window</th></tr></thead>\n<tbody>\n"
        for control in controls {
            var checks = control.checks.isEmpty ? "<p>No automated check: a person must judge it.</p>"
                : "<ul>" + control.checks.map {
                    "<li><code>\(e($0.id))</code> \(ReportHTML.badge($0.verdict)) \(e($0.description))<ul>" + $0.reasons.map { "<li>\(e($0))</li>" }.joined()
                        + "</ul></li>"
                }.joined() + "</ul>"
            if !control.parameters.isEmpty {
                checks += "<p>Parameters:</p><ul>" + control.parameters.map { parameter in
                    "<li><code>\(e(parameter.id))</code> \(e(parameter.label)): " + (parameter.value.map(e) ?? "<strong>not set</strong> (CSP-defined: set compliance.parameters)")
                        + (parameter.source == .configuration ? " (from compliance.parameters)" : "") + "</li>"
                }.joined() + "</ul>"
            }
            checks += "<details><summary>Implementation</summary><p>\(e(control.implementation))</p></details>"
            let total = control.evidence.map(\.count).reduce(0, +)
            let events = control.evidence.isEmpty ? "—" : "<ul>" + control.evidence.map { "<li><code>\(e($0.event))</code> \($0.count)</li>" }.joined() + "</ul>"
            body += "<tr><th scope=\"row\" data-sort=\"\(Control.SortKey(control.id).text)\" class=\"t\">\(e(control.id))</th><td>\(e(control.title))"
                + (control.inBaseline ? "" : " <small>(organization-selected)</small>") + "</td>" + ReportHTML.verdictCell(control.verdict)
                + "<td>\(checks)</td><td class=\"ev\" data-sort=\"\(control.evidence.isEmpty ? -1 : total)\">\(events)</td></tr>\n"
        }
        body += "</tbody>\n</table>\n</section>\n"
        if let cryptoBoundary {
            body += "<section id=\"crypto\">\n<h2>Cryptographic boundary (SC-13)</h2>\n<table class=\"sortable\">\n<caption>Which module performs each"
                + " use of cryptography (portcullis selftest)</caption>\n<thead><tr><th scope=\"col\" aria-sort=\"ascending\">Use</th><th scope=\"col\">Algorithms</th>"
                + "<th scope=\"col\">Module</th><th scope=\"col\">FIPS provider</th></tr></thead>\n<tbody>\n"
            for row in cryptoBoundary.sorted(by: { $0.name < $1.name }) {
                body += "<tr><th scope=\"row\">\(e(row.name))</th><td>\(e(row.algorithms))</td><td>\(e(row.module))</td>"
                    + "<td>\(row.fipsProvider ? "yes" : "<strong>no</strong>")</td></tr>\n"
            }
            body += "</tbody>\n</table>\n</section>\n"
        }
        body += "</main>\n<footer><p>Generated by <code>pcctl report fedramp --format html</code>. A control is as bad as its worst check: not satisfied,"
            + " else manual, else satisfied. <em>Manual</em>: a person must judge it. Times are UTC. This file is self-contained: it loads nothing"
            + " from the network.</p></footer>\n"
        return ReportHTML.page(title: "FedRAMP control status — FedRAMP Rev5 \(baseline.title) — \(AuditTime.format(window.from).prefix(10)) to "
                                   + "\(AuditTime.format(window.to).prefix(10))", body: body)
    }
}
