import Audit
import Foundation
import PortcullisVersion

/// What every HTML report page shares: one self-contained file (it loads nothing: the style and
/// script are inline and allowed only by their hashes), readable without script and printed.
/// Everything that came from the data — names, reasons, titles — goes through `escape`.
public enum ReportHTML {
    public static let contentSecurityPolicy = "default-src 'none'; style-src 'sha256-\(ReportHTMLAssets.styleHash)' 'report-sample';"
        + " script-src 'sha256-\(ReportHTMLAssets.scriptHash)' 'report-sample'; img-src data:; base-uri 'none'; form-action 'none'"

    static func page(title: String, body: String) -> String {
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            + "<meta http-equiv=\"Content-Security-Policy\" content=\"\(contentSecurityPolicy)\">\n"
            + "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            + "<meta name=\"color-scheme\" content=\"light\">\n"
            + "<link rel=\"icon\" href=\"data:,\">\n"
            + "<title>\(escape(title))</title>\n<style>\(ReportHTMLAssets.style)</style>\n</head>\n<body>\n\(body)"
            + "<script>\(ReportHTMLAssets.script)</script>\n</body>\n</html>\n"
    }

    /// For text and for (double-quoted) attribute values alike (the reports and the web console).
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }

    static func badge(_ verdict: ControlVerdict) -> String {
        switch verdict {
        case .satisfied: "<span class=\"verdict v-s\"><span aria-hidden=\"true\">✓</span> satisfied</span>"
        case .notSatisfied: "<span class=\"verdict v-ns\"><span aria-hidden=\"true\">✗</span> not satisfied</span>"
        case .manual: "<span class=\"verdict v-m\"><span aria-hidden=\"true\">?</span> manual</span>"
        }
    }

    /// A table cell sorting satisfied, manual, not satisfied.
    static func verdictCell(_ verdict: ControlVerdict) -> String { "<td data-sort=\"\(verdict.severity)\">\(badge(verdict))</td>" }

    static func reasons(_ reasons: [String]) -> String {
        "<ul class=\"reasons\">" + reasons.map { "<li>\(escape($0))</li>" }.joined() + "</ul>"
    }

    static func time(_ date: Date) -> String {
        let text = AuditTime.format(date)
        return "<time datetime=\"\(text)\">\(text)</time>"
    }

    /// `2025-03-05 14:05:12` (the column says UTC), sorting by the exact time.
    static func timeCell(_ date: Date?) -> String {
        guard let date else { return "<td class=\"t\" data-sort=\"\">—</td>" }
        let exact = AuditTime.format(date)
        let shown = exact   // truncated to the second below: rounding could roll over into the next day
        return "<td class=\"t\" data-sort=\"\(exact)\"><time datetime=\"\(exact)\">\(shown.prefix(10)) \(shown.dropFirst(11).prefix(8))</time></td>"
    }

    static func metaEntry(_ term: String, _ definition: String) -> String { "<dt>\(term)</dt><dd>\(definition)</dd>\n" }

    static func generated(_ date: Date) -> String { "\(time(date)) by pcctl \(PortcullisVersion.version)" }
}
