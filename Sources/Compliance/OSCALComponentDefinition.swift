import FIPSCrypto
import Foundation
import PortcullisVersion

extension ControlCatalog {
    /// The appliance as an OSCAL component definition (`pcctl report controls --format oscal`):
    /// one component whose control implementation, against the FedRAMP Rev5 baseline, has one
    /// implemented requirement per control evaluated there — our statement, the parameter
    /// values in force, the automated checks and evidence events as properties.
    public func oscalComponentDefinition(baseline: Baseline, parameters: [String: String], generated: Date, crypto: CryptoContext) throws -> Data {
        let ids = OSCALIdentifiers(crypto: crypto)
        let vendor = try ids.uuid("portcullis:party:vendor")
        let profile = OSCALBaseline.rev5(baseline)
        var requirements: [OSCAL.ImplementedRequirement] = []
        for control in controls where control.applies(at: baseline) {
            var props = control.checks.filter { $0.applies(at: baseline) }.map {
                OSCAL.Property.ours("check", $0.rule.name, class: $0.id, remarks: $0.description)
            }
            props += control.evidence.map { OSCAL.Property.ours("evidence-event", $0) }
            var set: [OSCAL.SetParameter] = []
            for parameter in control.parameters {
                let value = FedRAMPReport.value(of: parameter, at: baseline, configured: parameters)
                guard let inForce = value.value else {
                    props.append(.ours("unset-parameter", parameter.id, remarks: "FedRAMP leaves it to the provider; set compliance.parameters.\(parameter.id)."))
                    continue
                }
                set.append(OSCAL.SetParameter(paramID: parameter.id, values: [OSCAL.line(inForce)],
                                              remarks: value.source == .configuration ? "From compliance.parameters (FedRAMP: CSP-defined)."
                                                                                      : "FedRAMP Rev5 \(baseline.title) value."))
            }
            if control.isPartial { props.append(.ours("implementation-status", "partial")) }
            requirements.append(OSCAL.ImplementedRequirement(
                uuid: try ids.uuid("portcullis:cdef:implemented-requirement:fedramp-rev5-\(baseline.rawValue):\(control.oscalID)"),
                controlID: control.oscalID, description: control.implementation, props: OSCAL.nonEmpty(props), setParameters: OSCAL.nonEmpty(set)))
        }
        let component = OSCAL.DefinedComponent(
            uuid: try ids.uuid("portcullis:cdef:component:appliance"), type: "software", title: "Portcullis SSH compliance gateway",
            description: "An SSH access gateway appliance: certificate authorities, an SSH proxy and nodes that admit, limit, record and audit"
                + " SSH sessions to an organization's hosts, with its FedRAMP controls checked against the live configuration (pcctl report controls).",
            purpose: "Controlled, audited SSH access to servers.",
            props: [.oscal("version", PortcullisVersion.version), .oscal("asset-type", "appliance")],
            responsibleRoles: [OSCAL.ResponsibleRole(roleID: "provider", partyUUIDs: [vendor])],
            controlImplementations: [OSCAL.ControlImplementation(
                uuid: try ids.uuid("portcullis:cdef:control-implementation:fedramp-rev5-\(baseline.rawValue)"), source: profile,
                description: "What Portcullis does for each NIST SP 800-53 Rev 5 control it maps at the FedRAMP Rev5 \(baseline.title) baseline"
                    + " (compliance/controls/). Parameter values are those in force: FedRAMP's, else compliance.parameters in the configuration;"
                    + " one FedRAMP leaves to the provider and the configuration does not set is an unset-parameter property instead.",
                props: [.ours("baseline", baseline.rawValue)], implementedRequirements: requirements)])
        let document = OSCAL.ComponentDefinitionDocument(componentDefinition: OSCAL.ComponentDefinition(
            uuid: try ids.randomUUID(),
            metadata: OSCAL.Metadata(title: "Portcullis SSH compliance gateway: FedRAMP Rev5 \(baseline.title) control implementations",
                                     lastModified: OSCAL.time(generated), version: PortcullisVersion.version, oscalVersion: OSCAL.version,
                                     props: [.ours("generator", "pcctl \(PortcullisVersion.version) report controls --format oscal"),
                                             .ours("baseline", baseline.rawValue)],
                                     roles: [OSCAL.Role(id: "provider", title: "Provider")],
                                     parties: [OSCAL.Party(uuid: vendor, type: "organization", name: "Portcullis")]),
            components: [component]))
        return try OSCAL.encode(document)
    }
}

/// Where the FedRAMP baselines are published as resolved OSCAL profile catalogs.
enum OSCALBaseline {
    static func rev5(_ baseline: Baseline) -> String {
        "https://raw.githubusercontent.com/GSA/fedramp-automation/master/dist/content/rev5/baselines/json/FedRAMP_rev5_\(baseline.rawValue.uppercased())-baseline-resolved-profile_catalog.json"
    }

    static func profile(_ baseline: AC10Baseline) -> String {
        switch baseline {
        case .high: rev5(.high)
        case .moderateRev4:
            "https://raw.githubusercontent.com/GSA/fedramp-automation/master/dist/content/rev4/baselines/json/FedRAMP_rev4_MODERATE-baseline-resolved-profile_catalog.json"
        }
    }
}
