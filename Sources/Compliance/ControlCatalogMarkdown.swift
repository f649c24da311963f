import Foundation

extension ControlCatalog {
    /// `compliance/controls.md`: the catalog as a document (`make docs`; a test fails when the
    /// file is stale). The YAML files are the source of truth.
    public func markdown() -> String {
        var lines = [
            "# Control catalog",
            "",
            "<!-- Generated from compliance/controls/*.yaml by `make docs`; a test fails when this file is stale. Edit the YAML files, not this one. -->",
            "",
            "What Portcullis does for each NIST SP 800-53 Rev 5 control it maps itself to. Each control is one file in",
            "`compliance/controls/`: its FedRAMP Rev5 baselines and parameter values (from GSA/fedramp-automation's Rev5",
            "baselines), what Portcullis does in our words, automated checks of the live configuration and roles, and the",
            "audit events (`docs/events.md`) that show it working. Only what the code does today is claimed; where Portcullis",
            "meets a control only in part, its statement says so.",
            "",
            "*CSP-defined*: FedRAMP leaves the value to the provider's system security plan. *—*: the control is not in that",
            "baseline. A control in no baseline (AU-14) is one the organization selects; it is checked at every baseline.",
            "A check answers *satisfied*, *not satisfied* or *manual* (a person must judge it); a control is as bad as its",
            "worst check.",
            "",
            "See `crypto-boundary.md` for the module serving each cryptographic boundary.",
            "",
            "| Control | Title | FedRAMP Rev5 baselines | Checks |",
            "| --- | --- | --- | --- |",
        ]
        for control in controls {
            lines.append("| \(control.id) | \(cell(control.title)) | \(baselineLetters(control.baselines)) | \(ruleNames(control)) |")
        }
        for control in controls {
            lines += ["", "## \(control.id) \(control.title)", ""]
            lines.append(control.baselines.isEmpty
                ? "Baselines: none in FedRAMP Rev5 or NIST SP 800-53B; selected by the organization."
                : "Baselines: \(control.baselines.map(\.title).joined(separator: ", ")).")
            if let note = control.note { lines += ["", "> \(note.replacingOccurrences(of: "\n", with: " "))"] }
            if !control.parameters.isEmpty {
                lines += ["", "| Parameter | Low | Moderate | High | Portcullis |", "| --- | --- | --- | --- | --- |"]
                for parameter in control.parameters {
                    let values = Baseline.allCases.map { parameter.values[$0].map(cell) ?? "—" }
                    lines.append("| `\(parameter.id)` \(cell(parameter.label)) | \(values.joined(separator: " | ")) | \(parameter.portcullis.map(cell) ?? "") |")
                }
            }
            // Folded YAML (`>`) keeps a paragraph on one line and ends it with a newline.
            let paragraphs = control.implementation.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            lines += ["", "**Implementation.** " + paragraphs.joined(separator: "\n\n")]
            lines += ["", "| Check | At | Rule | What it checks |", "| --- | --- | --- | --- |"]
            for check in control.checks {
                let at = (check.baselines ?? control.baselines).map(\.title).joined(separator: ", ")
                var what = cell(check.description)
                switch check.rule {
                case .manual(let instruction): what += " *Manual:* " + cell(instruction)
                case .knownGap(let gap): what += " *Gap:* " + cell(gap)
                default: break
                }
                lines.append("| `\(check.id)` | \(at.isEmpty ? "every baseline" : at) | `\(check.rule.source)` | \(what) |")
            }
            lines += ["", "Evidence: " + (control.evidence.isEmpty ? "no audit event; see the checks." : control.evidence.map { "`\($0)`" }.joined(separator: ", ") + ".")]
            if !control.verifiedBy.isEmpty {
                lines += ["", "Verified by: " + control.verifiedBy.map { "`\($0)`" }.joined(separator: ", ") + "."]
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The rules a control's checks use, each once.
    private func ruleNames(_ control: Control) -> String {
        var seen = Set<String>()
        return control.checks.map(\.rule.name).filter { seen.insert($0).inserted }.map { "`\($0)`" }.joined(separator: ", ")
    }

    private func baselineLetters(_ baselines: [Baseline]) -> String {
        baselines.isEmpty ? "none (organization-selected)" : baselines.map { String($0.title.prefix(1)) }.joined(separator: ", ")
    }

    /// Text for a table cell: one line, pipes escaped; the catalog's own Markdown is kept.
    private func cell(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).joined(separator: " ").replacingOccurrences(of: "|", with: "\\|")
    }
}

/// Text from the data (user and role names, reasons, event fields) placed in Markdown.
enum Markdown {
    /// One line; pipes escaped (a table cell), and the characters that would make markup or HTML
    /// of a name written as `<script>` or `*x*` escaped too.
    static func cell(_ text: String) -> String {
        var out = ""
        for character in text.split(whereSeparator: \.isNewline).joined(separator: " ") {
            if "|\\`*_[]<>#".contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }
}
