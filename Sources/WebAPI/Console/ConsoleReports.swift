import Compliance
import Foundation

/// The compliance reports the console shows, as `pcctl report` makes them: computed by the
/// appliance (it knows its configuration, roles and audit log) in the daemon.
public protocol ConsoleReports: Sendable {
    func report(_ name: ConsoleReportName, window: ReportWindow, format: ConsoleReportFormat) async throws -> String
}

public enum ConsoleReportName: String, CaseIterable, Sendable {
    case ac10 = "ac-10"
    case fedramp

    var title: String {
        switch self {
        case .ac10: "AC-10 concurrent session control"
        case .fedramp: "FedRAMP controls (High baseline)"
        }
    }

    var summary: String {
        switch self {
        case .ac10: "Limits per role and user against the baseline, observed peaks with the concurrency chart, violations."
        case .fedramp: "Every mapped NIST SP 800-53 control: automated status, the facts and event counts behind it."
        }
    }
}

/// The forms a report comes in (`pcctl report --format`).
public enum ConsoleReportFormat: String, CaseIterable, Sendable {
    case html, json, md, oscal

    var contentType: String {
        switch self {
        case .html: "text/html; charset=utf-8"
        case .json, .oscal: "application/json"
        case .md: "text/markdown; charset=utf-8"
        }
    }

    var fileExtension: String {
        switch self {
        case .html: "html"
        case .json: "json"
        case .md: "md"
        case .oscal: "oscal.json"
        }
    }

    var label: String {
        switch self {
        case .html: "HTML"
        case .json: "JSON"
        case .md: "Markdown"
        case .oscal: "OSCAL assessment results"
        }
    }
}

/// One report at a time: each reads up to the whole audit log (a million events take seconds),
/// so a person who keeps asking cannot take the daemon's cores from everyone else.
actor ReportGate {
    private var busy = false

    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T? {
        guard !busy else { return nil }
        busy = true
        defer { busy = false }
        return try await body()
    }
}
