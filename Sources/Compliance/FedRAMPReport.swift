import Audit
import Foundation

/// Every control of the catalog evaluated at a FedRAMP Rev5 baseline: the automated checks over
/// the configuration and roles, the parameter values in force, the audit events in the window that
/// evidence each control, the crypto boundary for SC-13, and at High the AC-10 report's verdict
/// on the concurrency actually observed. JSON keys are snake_case (`json()`), controls in
/// catalog order, so the same input gives the same bytes.
public struct FedRAMPReport: Sendable, Equatable, Encodable {
    public var window: ReportWindow
    public var baseline: Baseline
    public var summary: Summary
    public var controls: [ControlFinding]
    /// `portcullis selftest`'s table for the OpenSSL this report was made with; `nil` when not
    /// known (an offline run given none).
    public var cryptoBoundary: [CryptoBoundary]?

    public struct Summary: Sendable, Equatable, Encodable {
        public var satisfied: Int
        public var notSatisfied: Int
        public var manual: Int

        /// The worst verdict: what the report as a whole answers.
        public var verdict: ControlVerdict { notSatisfied > 0 ? .notSatisfied : manual > 0 ? .manual : .satisfied }
    }

    public struct ControlFinding: Sendable, Equatable, Encodable {
        public var id: String
        public var title: String
        /// False for a control in no FedRAMP baseline (AU-14), reported because the organization selects it.
        public var inBaseline: Bool
        public var verdict: ControlVerdict
        public var implementation: String
        public var parameters: [ParameterValue]
        public var checks: [CheckResult]
        /// The catalog's evidence events for this control, with how many were written in the window.
        public var evidence: [EventCount]

        enum CodingKeys: String, CodingKey {
            case id, title, inBaseline = "in_baseline", verdict, implementation, parameters, checks, evidence
        }
    }

    /// An organization-defined parameter: FedRAMP's value at this baseline and the one in force.
    public struct ParameterValue: Sendable, Equatable, Encodable {
        public var id: String
        public var label: String
        /// FedRAMP's value at the baseline, or "CSP-defined".
        public var fedramp: String
        /// What this appliance uses: FedRAMP's value, else (where FedRAMP leaves it to the
        /// provider) `compliance.parameters` in the configuration; `nil` when neither says.
        public var value: String?
        public var source: Source

        public enum Source: String, Sendable, Equatable, Encodable {
            case fedramp
            /// `compliance.parameters`.
            case configuration
            /// FedRAMP sets none and nothing was configured: the SSP must say.
            case unset
        }
    }

    public struct EventCount: Sendable, Equatable, Encodable {
        public var event: String
        public var count: Int
    }

    /// What FedRAMP leaves to the provider.
    public static let providerDefined = "CSP-defined"

    /// - Parameters:
    ///   - eventCounts: events written in the window, by name (at least every name the catalog's
    ///     evidence lists; see `evidenceEvents`).
    ///   - parameters: `compliance.parameters`: values for parameters FedRAMP leaves to the provider.
    ///   - ac10: the AC-10 report over the same window, judged at High; added to AC-10 as a check.
    public static func make(catalog: ControlCatalog, facts: ComplianceFacts, baseline: Baseline, window: ReportWindow,
                            eventCounts: [String: Int], parameters: [String: String] = [:], ac10: AC10Report? = nil,
                            cryptoBoundary: [CryptoBoundary]? = nil) -> FedRAMPReport {
        let statuses = catalog.evaluate(facts, baseline: baseline)
        let findings = statuses.map { status -> ControlFinding in
            let control = catalog.control(status.id)!
            var checks = status.checks
            if control.oscalID == "ac-10", let ac10 { checks.append(observedConcurrency(ac10)) }
            return ControlFinding(
                id: control.id, title: control.title, inBaseline: status.inBaseline, verdict: checks.map(\.verdict).max() ?? .manual,
                implementation: control.implementation,
                parameters: control.parameters.map { value(of: $0, at: baseline, configured: parameters) },
                checks: checks, evidence: control.evidence.map { EventCount(event: $0, count: eventCounts[$0] ?? 0) })
        }
        let summary = Summary(satisfied: findings.filter { $0.verdict == .satisfied }.count,
                              notSatisfied: findings.filter { $0.verdict == .notSatisfied }.count,
                              manual: findings.filter { $0.verdict == .manual }.count)
        return FedRAMPReport(window: window, baseline: baseline, summary: summary, controls: findings, cryptoBoundary: cryptoBoundary)
    }

    /// The event names whose counts a report over `catalog` shows.
    public static func evidenceEvents(_ catalog: ControlCatalog) -> Set<String> { Set(catalog.controls.flatMap(\.evidence)) }

    /// FedRAMP's value where it sets one; where it leaves the value to the provider, the
    /// configured one (a configured value never overrides FedRAMP's).
    static func value(of parameter: Control.Parameter, at baseline: Baseline, configured: [String: String]) -> ParameterValue {
        let fedramp = parameter.values[baseline] ?? providerDefined
        var value = ParameterValue(id: parameter.id, label: parameter.label, fedramp: fedramp, value: fedramp, source: .fedramp)
        if fedramp == providerDefined {
            value.value = configured[parameter.id]
            value.source = value.value == nil ? .unset : .configuration
        }
        return value
    }

    /// The AC-10 report's verdict as a check: enforcement seen working, not only configured.
    static func observedConcurrency(_ report: AC10Report) -> CheckResult {
        CheckResult(id: "observed-concurrency",
                    description: "Observed connections stayed within each user's limit, and the limits within the baseline (pcctl report ac-10).",
                    verdict: report.control.verdict.controlVerdict, reasons: report.control.reasons)
    }
}
