import Audit
import Compliance
import FIPSCrypto
import Foundation
import Identity
import Storage
import WebAPI

extension Configuration {
    /// What the control checks judge, from this configuration and the stored roles.
    public func complianceFacts(roles: [Role]) -> ComplianceFacts {
        let node = nodeSettings, auth = authService
        return ComplianceFacts(fipsEnabled: fips.enabled, clusterIdleTimeout: node.clientIdleTimeout,
                               disconnectExpiredCert: node.disconnectExpiredCert, maxFailedLogins: auth.authentication.maxFailedLogins,
                               failedLoginWindow: auth.authentication.failedLoginWindow, lockoutDuration: auth.authentication.lockoutDuration,
                               messageOfTheDaySet: !auth.messageOfTheDay.isEmpty, maxSessionTTL: auth.maxSessionTTL,
                               lockingMode: node.lockingMode, auditRetention: nil, roles: roles)
    }
}

/// The web console's reports, made in the daemon as `pcctl report ac-10` and `pcctl report
/// fedramp --baseline high` make them live: AC-10 from its evidence events read as they stream
/// (never all held), FedRAMP from the installed control catalog, this configuration, the event
/// counts (clear columns, nothing decrypted) and this process's crypto boundary.
struct ApplianceReports: ConsoleReports {
    let configuration: Configuration
    let log: AuditLog
    let backend: any Backend
    let crypto: CryptoContext

    func report(_ name: ConsoleReportName, window: ReportWindow, format: ConsoleReportFormat) async throws -> String {
        let roles = try await IdentityService.storedRoles(in: backend)
        switch name {
        case .ac10:
            return try render(try await ac10(roles: roles, window: window, series: format == .html), format)
        case .fedramp:
            let catalog = try ControlCatalog.load(directory: ControlCatalog.defaultDirectory)
            let withAC10 = catalog.controls.contains { $0.id == "AC-10" && $0.applies(at: .high) }
            let report = FedRAMPReport.make(
                catalog: catalog, facts: configuration.complianceFacts(roles: roles), baseline: .high, window: window,
                eventCounts: try await log.counts(of: FedRAMPReport.evidenceEvents(catalog), from: window.from, to: window.to),
                parameters: configuration.compliance.parameters, ac10: withAC10 ? try await ac10(roles: roles, window: window, series: false) : nil,
                cryptoBoundary: CryptoBoundary.table(for: crypto.status))
            return try render(report, format)
        }
    }

    private func ac10(roles: [Role], window: ReportWindow, series: Bool) async throws -> AC10Report {
        // A connection open at the window's start began before it: evidence is read from the log's start.
        try await log.withEvents(named: AC10Report.evidenceKinds.map(\.name), through: window.to, keeping: AC10Report.evidenceFields) { events in
            AC10Report.make(events: events, roles: roles, window: (window.from, window.to), baseline: .high, series: series)
        }
    }

    private func render(_ report: some ComplianceReport, _ format: ConsoleReportFormat) throws -> String {
        let cluster = configuration.authService.clusterName
        switch format {
        case .html: return report.html(cluster: cluster, generated: Date())
        case .json: return String(decoding: try report.json(), as: UTF8.self) + "\n"
        case .md: return report.markdown()
        case .oscal: return String(decoding: try report.oscal(cluster: cluster, generated: Date(), crypto: crypto), as: UTF8.self) + "\n"
        }
    }
}
