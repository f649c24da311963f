import FIPSCrypto
import Foundation

/// A report in every form but plain text (which each command words for its terminal).
public protocol ComplianceReport {
    /// The documented JSON (a schema in compliance/schemas/): the same report, the same bytes.
    func json() throws -> Data
    func markdown() -> String
    /// One self-contained page.
    func html(cluster: String, generated: Date) -> String
    /// OSCAL 1.2.1 assessment results.
    func oscal(cluster: String, generated: Date, crypto: CryptoContext) throws -> Data
}

extension AC10Report: ComplianceReport {}
extension FedRAMPReport: ComplianceReport {}
