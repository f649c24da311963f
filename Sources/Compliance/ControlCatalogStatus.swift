/// A check's or a control's answer.
public enum ControlVerdict: String, Sendable, Equatable, Comparable, Encodable {
    case satisfied
    case notSatisfied = "not_satisfied"
    /// A person must judge it: no automated check, or one that needs what the facts cannot show.
    case manual

    /// A control is as bad as its worst check: not satisfied, else manual, else satisfied.
    public static func < (a: ControlVerdict, b: ControlVerdict) -> Bool { a.severity < b.severity }

    var severity: Int {
        switch self {
        case .satisfied: 0
        case .manual: 1
        case .notSatisfied: 2
        }
    }
}

/// One check's answer, with reasons a person can act on.
public struct CheckResult: Sendable, Equatable, Encodable {
    public var id: String
    public var description: String
    public var verdict: ControlVerdict
    public var reasons: [String]
}

/// One control's answer at a baseline.
public struct ControlStatus: Sendable, Equatable {
    public var id: String
    public var title: String
    public var baseline: Baseline
    /// False for a control in no FedRAMP baseline (AU-14), reported because the organization selects it.
    public var inBaseline: Bool
    public var verdict: ControlVerdict
    public var checks: [CheckResult]
}

extension ControlCatalog {
    /// Every control evaluated at `baseline` (those in it, and those in no baseline), with the
    /// checks that apply there. A control none of whose checks applies is `manual`.
    public func evaluate(_ facts: ComplianceFacts, baseline: Baseline) -> [ControlStatus] {
        controls.filter { $0.applies(at: baseline) }.map { control in
            let results = control.checks.filter { $0.applies(at: baseline) }.map { check in
                let (verdict, reasons) = check.rule.evaluate(facts, baseline: baseline)
                return CheckResult(id: check.id, description: check.description, verdict: verdict, reasons: reasons)
            }
            return ControlStatus(id: control.id, title: control.title, baseline: baseline, inBaseline: control.baselines.contains(baseline),
                                 verdict: results.map(\.verdict).max() ?? .manual, checks: results)
        }
    }
}
