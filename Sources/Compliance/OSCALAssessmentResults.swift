import Audit
import FIPSCrypto
import Foundation
import PortcullisVersion

/// One control as an OSCAL assessment result sees it: an observation (the checks, facts and
/// event counts behind the verdict) and a finding (the verdict).
struct AssessedControl {
    /// As NIST writes it: `AC-10`.
    var id: String
    var title: String
    var verdict: ControlVerdict
    var partial: Bool
    var checks: [CheckResult]
    /// Named numbers behind the verdict (`users-observed`: `3`); names are OSCAL tokens.
    var facts: [(name: String, value: String)]
    var events: [FedRAMPReport.EventCount]
    /// What was observed, in a sentence or two.
    var summary: String

    var oscalID: String { Control.oscalID(of: id) }
}

/// What the document is about, beyond its controls.
struct AssessmentContext {
    var report: String
    var cluster: String
    /// `high`, `moderate_rev4`: part of the result's and findings' names.
    var baseline: String
    var baselineTitle: String
    var profile: String
    var window: ReportWindow
    var generated: Date
}

enum OSCALAssessmentResults {
    /// An OSCAL assessment-results document with one result over the window: the appliance as the
    /// subject, `pcctl` as the tool, and per control an observation and a finding. There is no
    /// assessment plan: `import-ap` points at a back-matter resource saying so (OSCAL's `#uuid`).
    /// A control needing manual evidence is `not-satisfied` with reason `other` (OSCAL has no
    /// third state) and our `verdict` property `manual`.
    static func document(_ controls: [AssessedControl], context: AssessmentContext, crypto: CryptoContext) throws -> Data {
        let ids = OSCALIdentifiers(crypto: crypto)
        let cluster = "portcullis:cluster:\(context.cluster)"
        let span = "\(AuditTime.format(context.window.from))/\(AuditTime.format(context.window.to))"
        // The report is part of every per-window name: the AC-10 and FedRAMP documents over one
        // window hold different findings for AC-10, and must not share their identifiers.
        let subject = "\(context.report):\(context.baseline):\(span)"
        let appliance = try ids.uuid("\(cluster):component:appliance")
        let tool = try ids.uuid("portcullis:tool:pcctl")
        let noPlan = try ids.uuid("portcullis:resource:no-assessment-plan")
        let origin = [OSCAL.Origin(actors: [OSCAL.Actor(type: "tool", actorUUID: tool)])]
        let collected = OSCAL.time(context.generated)

        var observations: [OSCAL.Observation] = [], findings: [OSCAL.Finding] = []
        for control in controls {
            let observationID = try ids.uuid("\(cluster):observation:\(subject):\(control.oscalID)")
            var props = control.checks.map { check in
                OSCAL.Property.ours("check", token(check.verdict), class: OSCAL.line(check.id),
                                    remarks: check.reasons.isEmpty ? check.description : check.description + "\n\n" + check.reasons.joined(separator: "\n\n"))
            }
            props += control.facts.map { OSCAL.Property.ours("fact", $0.value, class: $0.name) }
            props += control.events.map { OSCAL.Property.ours("event-count", String($0.count), class: $0.event) }
            let evidence = control.events.map {
                OSCAL.Evidence(description: "\($0.count) `\($0.event)` events in the audit log from \(AuditTime.format(context.window.from))"
                               + " to \(AuditTime.format(context.window.to)) (end excluded), counted by `pcctl report \(context.report)`.")
            }
            observations.append(OSCAL.Observation(
                uuid: observationID, title: OSCAL.line("\(control.id): \(control.title)"), description: control.summary, props: OSCAL.nonEmpty(props),
                methods: control.id == "SC-13" ? ["EXAMINE", "TEST"] : ["EXAMINE"], types: ["control-objective"], origins: origin,
                subjects: [OSCAL.Subject(subjectUUID: appliance, type: "component")], relevantEvidence: OSCAL.nonEmpty(evidence),
                collected: collected))
            let failing = control.checks.filter { $0.verdict == control.verdict && $0.verdict != .satisfied }.map(\.id)
            let status: OSCAL.Status = switch control.verdict {
            case .satisfied: OSCAL.Status(state: "satisfied", reason: "pass", remarks: nil)
            case .notSatisfied: OSCAL.Status(state: "not-satisfied", reason: "fail", remarks: "Not satisfied: \(failing.joined(separator: ", ")).")
            case .manual: OSCAL.Status(state: "not-satisfied", reason: "other",
                                       remarks: "Not determined automatically: a person must judge \(failing.isEmpty ? "the control" : failing.joined(separator: ", ")).")
            }
            findings.append(OSCAL.Finding(
                uuid: try ids.uuid("\(cluster):finding:\(subject):\(control.oscalID)"),
                title: OSCAL.line("\(control.id) \(control.title): \(control.verdict.rawValue.replacingOccurrences(of: "_", with: " "))"),
                description: control.checks.filter { $0.verdict != .satisfied }.flatMap(\.reasons).first ?? control.summary,
                props: [.ours("verdict", token(control.verdict))], origins: origin,
                target: OSCAL.Target(type: "statement-id", targetID: "\(control.oscalID)_smt", status: status,
                                     implementationStatus: control.partial ? OSCAL.State(state: "partial") : nil),
                relatedObservations: [OSCAL.ObservationReference(observationUUID: observationID)]))
        }

        let count = { (verdict: ControlVerdict) in String(controls.filter { $0.verdict == verdict }.count) }
        let worst = controls.map(\.verdict).max() ?? .manual
        let result = OSCAL.Result(
            uuid: try ids.uuid("\(cluster):result:\(subject)"),
            title: "Automated checks and audit evidence, \(span)",
            description: "The controls Portcullis maps at the \(context.baselineTitle) baseline, evaluated by `pcctl report \(context.report)` against"
                + " cluster \(context.cluster)'s configuration and roles, with the audit events written in the window. A control is as bad as its"
                + " worst check: not satisfied, else manual (a person must judge), else satisfied. Manual controls have state not-satisfied with"
                + " reason other: not shown to be satisfied, and not a failure.",
            start: OSCAL.time(context.window.from), end: OSCAL.time(context.window.to),
            props: [.ours("controls-satisfied", count(.satisfied)), .ours("controls-not-satisfied", count(.notSatisfied)),
                    .ours("controls-manual", count(.manual)), .ours("verdict", token(worst))],
            localDefinitions: OSCAL.LocalDefinitions(
                components: [OSCAL.SystemComponent(
                    uuid: appliance, type: "software", title: OSCAL.line("Portcullis SSH compliance gateway, cluster \(context.cluster)"),
                    description: "The Portcullis appliance assessed: its certificate authorities, proxy and nodes, configuration and roles, and sealed audit log.",
                    props: [.oscal("version", PortcullisVersion.version), .oscal("asset-type", "appliance")],
                    links: [OSCAL.Link(href: "urn:uuid:" + (try ids.uuid("portcullis:cdef:component:appliance")), rel: "imported-from",
                                       text: "Portcullis component definition (pcctl report controls --format oscal)")],
                    status: OSCAL.State(state: "operational"))],
                assessmentAssets: OSCAL.AssessmentAssets(
                    components: [OSCAL.SystemComponent(
                        uuid: tool, type: "software", title: "pcctl report \(context.report)",
                        description: "Portcullis's compliance reporter: evaluates the control catalog's automated checks and reads the sealed audit log.",
                        props: [.oscal("version", PortcullisVersion.version)], links: nil, status: OSCAL.State(state: "operational"))],
                    assessmentPlatforms: [OSCAL.AssessmentPlatform(
                        uuid: try ids.uuid("\(cluster):assessment-platform"), title: OSCAL.line("Portcullis cluster \(context.cluster) (self-assessment)"),
                        usesComponents: [OSCAL.ComponentReference(componentUUID: tool)])])),
            reviewedControls: OSCAL.ReviewedControls(controlSelections: [OSCAL.ControlSelection(
                description: "The controls of Portcullis's catalog at the \(context.baselineTitle) baseline.",
                includeControls: controls.map { OSCAL.ControlReference(controlID: $0.oscalID) })]),
            observations: OSCAL.nonEmpty(observations), findings: OSCAL.nonEmpty(findings))

        let document = OSCAL.AssessmentResultsDocument(assessmentResults: OSCAL.AssessmentResults(
            uuid: try ids.randomUUID(),
            metadata: OSCAL.Metadata(
                title: OSCAL.line("Portcullis automated \(context.baselineTitle) assessment: cluster \(context.cluster), \(span)"),
                lastModified: collected, version: PortcullisVersion.version, oscalVersion: OSCAL.version,
                props: [.ours("generator", "pcctl \(PortcullisVersion.version) report \(context.report) --format oscal"),
                        .ours("baseline", context.baseline), .ours("cluster", context.cluster)],
                roles: nil, parties: [OSCAL.Party(uuid: try ids.uuid("portcullis:party:vendor"), type: "organization", name: "Portcullis")]),
            importAP: OSCAL.ImportAP(href: "#\(noPlan)",
                                     remarks: "There is no assessment plan: these are automated results from the appliance; the reference is a back-matter resource saying so."),
            results: [result],
            backMatter: OSCAL.BackMatter(resources: [OSCAL.Resource(
                uuid: noPlan, title: "No assessment plan",
                description: "These results were produced automatically by the Portcullis appliance (`pcctl report \(context.report)`), not by an"
                    + " assessment carried out under an OSCAL assessment plan. Their scope is the controls of the Portcullis control catalog at the"
                    + " \(context.baselineTitle) baseline, over the window of the result.",
                rlinks: [OSCAL.ResourceLink(href: context.profile, mediaType: "application/oscal+json")])])))
        return try OSCAL.encode(document)
    }

    /// A verdict as an OSCAL token (no underscore convention there: `not-satisfied`).
    static func token(_ verdict: ControlVerdict) -> String { verdict.rawValue.replacingOccurrences(of: "_", with: "-") }
}

extension FedRAMPReport {
    /// `--format oscal`: assessment results, one observation and finding per control.
    public func oscal(cluster: String, generated: Date, crypto: CryptoContext) throws -> Data {
        let assessed = controls.map { control in
            var facts = control.parameters.compactMap { parameter in parameter.value.map { (name: parameter.id, value: $0) } }
            if control.id == "SC-13", let cryptoBoundary {
                facts.append((name: "boundaries-outside-fips-provider", value: String(cryptoBoundary.filter { !$0.fipsProvider }.count)))
            }
            return AssessedControl(id: control.id, title: control.title, verdict: control.verdict, partial: Control.isPartial(control.implementation),
                                   checks: control.checks, facts: facts, events: control.evidence,
                                   summary: control.checks.map { "\($0.description) \($0.verdict.rawValue.replacingOccurrences(of: "_", with: " "))." }
                                       .joined(separator: " ").nonEmpty ?? "No automated check: evidence must be judged by a person.")
        }
        return try OSCALAssessmentResults.document(assessed, context: AssessmentContext(
            report: "fedramp", cluster: cluster, baseline: baseline.rawValue, baselineTitle: "FedRAMP Rev5 \(baseline.title)",
            profile: OSCALBaseline.rev5(baseline), window: window, generated: generated), crypto: crypto)
    }
}

extension AC10Report {
    /// `--format oscal`: assessment results for AC-10 alone.
    public func oscal(cluster: String, generated: Date, crypto: CryptoContext) throws -> Data {
        let verdict = control.verdict.controlVerdict
        let peak = users.max { $0.connections.peak < $1.connections.peak }
        let facts: [(name: String, value: String)] = [
            ("roles", String(roles.count)), ("roles-privileged", String(roles.filter { $0.privileged == true }.count)),
            ("roles-over-baseline-limit", String(roles.filter { $0.verdict == .notSatisfied }.count)),
            ("users-observed", String(users.count)), ("peak-connections-per-user", String(peak?.connections.peak ?? 0)),
            ("users-over-their-limit", String(users.filter { !$0.violations.isEmpty }.count)),
            ("refusals", String(users.map(\.refusals.count).reduce(0, +))),
        ]
        let check = CheckResult(id: "ac-10-report", description: "Each role's limit within the baseline, and each user's observed connections within their limit.",
                                verdict: verdict, reasons: control.reasons)
        let summary = "\(users.count) users connected in the window; the highest concurrency was \(peak?.connections.peak ?? 0) connections"
            + (peak.map { " (user \($0.user))" } ?? "") + "; \(users.filter { !$0.violations.isEmpty }.count) users were over their limit at some moment;"
            + " \(users.map(\.refusals.count).reduce(0, +)) connections and session channels were refused."
        let assessed = AssessedControl(id: "AC-10", title: "Concurrent Session Control", verdict: verdict, partial: false, checks: [check],
                                       facts: facts, events: [], summary: summary)
        return try OSCALAssessmentResults.document([assessed], context: AssessmentContext(
            report: "ac-10", cluster: cluster, baseline: baseline.rawValue, baselineTitle: baseline.title, profile: OSCALBaseline.profile(baseline),
            window: window, generated: generated), crypto: crypto)
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
