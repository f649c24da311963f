import Audit
import Foundation

// The reports as Markdown, for a ticket or a wiki page: the verdicts first, then the tables.

extension AC10Report {
    public func markdown() -> String {
        var lines = [
            "# AC-10 Concurrent Session Control",
            "",
            "Window \(AuditTime.format(window.from)) to \(AuditTime.format(window.to)); baseline \(baseline.title).",
            "",
            "**Control: \(control.verdict.rawValue)**",
            "",
        ]
        lines += control.reasons.map { "- \(Markdown.cell($0))" }
        lines += ["", "## Roles", "", "| Role | Privileged | max_connections | Baseline | Verdict | Reasons |", "| --- | --- | --- | --- | --- | --- |"]
        for role in roles {
            lines.append("| \(Markdown.cell(role.name)) | \(role.privileged.map { $0 ? "yes" : "no" } ?? "unknown") | "
                         + "\(role.maxConnections.map { $0 == 0 ? "unlimited" : String($0) } ?? "not set") | \(role.baselineLimit.map(String.init) ?? "—") | "
                         + "\(role.verdict.rawValue) | \(Markdown.cell(role.reasons.joined(separator: " "))) |")
        }
        lines += ["", "## Users", "",
                  "| User | Roles | Limit | Peak connections | Peak sessions | Over the limit | Refusals | Verdict |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for user in users {
            lines.append("| \(Markdown.cell(user.user)) | \(Markdown.cell(user.roles.joined(separator: ", "))) | "
                         + "\(user.limit.map { $0 == 0 ? "unlimited" : String($0) } ?? "unknown") | \(Self.peak(user.connections)) | "
                         + "\(Self.peak(user.sessions)) | \(user.violations.count) | \(user.refusals.count) | \(user.verdict.rawValue) |")
        }
        for user in users where !user.reasons.isEmpty || !user.violations.isEmpty {
            lines += ["", "### \(Markdown.cell(user.user)): \(user.verdict.rawValue)", ""]
            lines += user.reasons.map { "- \(Markdown.cell($0))" }
            for violation in user.violations {
                lines.append("- Over the limit from \(AuditTime.format(violation.from)) to \(AuditTime.format(violation.to)):"
                             + " \(violation.concurrent) open, limit \(violation.limit).")
            }
            for refusal in user.refusals.prefix(20) {
                lines.append("- Refused at \(AuditTime.format(refusal.at)) (max \(refusal.max)): \(Markdown.cell(refusal.reason))")
            }
            if user.refusals.count > 20 { lines.append("- … and \(user.refusals.count - 20) more refusals (see the JSON form).") }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func peak(_ concurrency: Concurrency) -> String {
        concurrency.peakAt.map { "\(concurrency.peak) at \(AuditTime.format($0))" } ?? String(concurrency.peak)
    }
}

extension FedRAMPReport {
    public func markdown() -> String {
        var lines = [
            "# FedRAMP Rev5 \(baseline.title): Portcullis controls",
            "",
            "Window \(AuditTime.format(window.from)) to \(AuditTime.format(window.to)).",
            "",
            "**\(summary.verdict.rawValue)**: \(summary.satisfied) satisfied, \(summary.notSatisfied) not satisfied, \(summary.manual) needing manual evidence.",
            "",
            "| Control | Title | Verdict | Evidence events in the window |",
            "| --- | --- | --- | --- |",
        ]
        for control in controls {
            let events = control.evidence.map { "\($0.event): \($0.count)" }.joined(separator: ", ")
            lines.append("| \(control.id) | \(Markdown.cell(control.title)) | \(control.verdict.rawValue) | \(events.isEmpty ? "—" : events) |")
        }
        for control in controls {
            lines += ["", "## \(control.id) \(Markdown.cell(control.title)): \(control.verdict.rawValue)", ""]
            if !control.inBaseline { lines += ["In no FedRAMP baseline: reported because the organization selects it.", ""] }
            for check in control.checks {
                lines.append("- **\(check.verdict.rawValue)** \(Markdown.cell(check.description))")
                lines += check.reasons.map { "  - \(Markdown.cell($0))" }
            }
            for parameter in control.parameters {
                lines.append("- Parameter \(parameter.id) (\(Markdown.cell(parameter.label))): "
                             + (parameter.value.map { Markdown.cell($0) } ?? "not set (CSP-defined: set compliance.parameters.\(parameter.id))")
                             + (parameter.source == .configuration ? " (from compliance.parameters)" : ""))
            }
        }
        if let cryptoBoundary {
            lines += ["", "## Cryptographic boundary (SC-13)", "", "| Use | Algorithms | Module | FIPS provider |", "| --- | --- | --- | --- |"]
            for row in cryptoBoundary {
                lines.append("| \(Markdown.cell(row.name)) | \(Markdown.cell(row.algorithms)) | \(Markdown.cell(row.module)) | \(row.fipsProvider ? "yes" : "**no**") |")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
