import Foundation

/// The FedRAMP baselines that set AC-10's number (`ac-10_odp.02`). From GSA/fedramp-automation
/// @c784140b: Rev5 has AC-10 in High only; Rev4 (superseded) had it in Moderate and High, with
/// the same value. Rev5 Moderate and Low do not include AC-10, so they are not offered.
public enum AC10Baseline: String, Sendable, Codable, CaseIterable {
    case high
    case moderateRev4 = "moderate_rev4"

    public var title: String {
        switch self {
        case .high: "FedRAMP Rev5 High"
        case .moderateRev4: "FedRAMP Rev4 Moderate"
        }
    }

    /// `ac-10_odp.02` (Rev4: `ac-10_prm_2`) as FedRAMP words it.
    public var statement: String {
        "three (3) sessions for privileged access and two (2) sessions for non-privileged access"
    }

    /// The most concurrent sessions the baseline allows an account of this kind.
    public func limit(privileged: Bool) -> Int { privileged ? 3 : 2 }

    func kind(privileged: Bool) -> String { privileged ? "privileged" : "non-privileged" }
}
