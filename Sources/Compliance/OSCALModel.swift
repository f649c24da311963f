import Audit
import Foundation

/// The parts of NIST OSCAL 1.2.1 (JSON) that Portcullis writes: a component definition of the
/// appliance and assessment results of its reports. Kebab-case keys as OSCAL spells them; an
/// empty array is never written (every OSCAL array needs an item), so optional arrays are `nil`
/// when empty. The schemas are vendored in compliance/schemas/oscal/. Written by hand: no Swift
/// OSCAL library exists among the project's dependencies.
public enum OSCAL {
    public static let version = "1.2.1"
    /// Our properties' namespace: a name OSCAL does not define needs one.
    static let namespace = "https://portcullis.dev/ns/oscal"

    struct Property: Encodable, Equatable {
        var name: String
        var ns: String?
        var value: String
        var `class`: String?
        var remarks: String?

        /// One of ours (`ns` set); `value` made a single trimmed line as OSCAL's strings must be.
        static func ours(_ name: String, _ value: String, class token: String? = nil, remarks: String? = nil) -> Property {
            Property(name: name, ns: OSCAL.namespace, value: OSCAL.line(value), class: token, remarks: remarks)
        }

        /// One OSCAL defines for the place it is in (`version`, `asset-type`).
        static func oscal(_ name: String, _ value: String) -> Property { Property(name: name, value: OSCAL.line(value)) }
    }

    struct Link: Encodable, Equatable {
        var href: String
        var rel: String?
        var text: String?
    }

    struct Metadata: Encodable, Equatable {
        var title: String
        var lastModified: String
        var version: String
        var oscalVersion: String
        var props: [Property]?
        var roles: [Role]?
        var parties: [Party]?

        enum CodingKeys: String, CodingKey {
            case title, lastModified = "last-modified", version, oscalVersion = "oscal-version", props, roles, parties
        }
    }

    struct Role: Encodable, Equatable {
        var id: String
        var title: String
    }

    struct Party: Encodable, Equatable {
        var uuid: String
        var type: String
        var name: String
    }

    struct ResponsibleRole: Encodable, Equatable {
        var roleID: String
        var partyUUIDs: [String]

        enum CodingKeys: String, CodingKey { case roleID = "role-id", partyUUIDs = "party-uuids" }
    }

    // MARK: Component definition

    struct ComponentDefinitionDocument: Encodable {
        var componentDefinition: ComponentDefinition

        enum CodingKeys: String, CodingKey { case componentDefinition = "component-definition" }
    }

    struct ComponentDefinition: Encodable {
        var uuid: String
        var metadata: Metadata
        var components: [DefinedComponent]
    }

    struct DefinedComponent: Encodable {
        var uuid: String
        var type: String
        var title: String
        var description: String
        var purpose: String?
        var props: [Property]?
        var responsibleRoles: [ResponsibleRole]?
        var controlImplementations: [ControlImplementation]

        enum CodingKeys: String, CodingKey {
            case uuid, type, title, description, purpose, props, responsibleRoles = "responsible-roles",
                 controlImplementations = "control-implementations"
        }
    }

    struct ControlImplementation: Encodable {
        var uuid: String
        var source: String
        var description: String
        var props: [Property]?
        var implementedRequirements: [ImplementedRequirement]

        enum CodingKeys: String, CodingKey {
            case uuid, source, description, props, implementedRequirements = "implemented-requirements"
        }
    }

    struct ImplementedRequirement: Encodable {
        var uuid: String
        var controlID: String
        var description: String
        var props: [Property]?
        var setParameters: [SetParameter]?

        enum CodingKeys: String, CodingKey {
            case uuid, controlID = "control-id", description, props, setParameters = "set-parameters"
        }
    }

    struct SetParameter: Encodable {
        var paramID: String
        var values: [String]
        var remarks: String?

        enum CodingKeys: String, CodingKey { case paramID = "param-id", values, remarks }
    }

    // MARK: Assessment results

    struct AssessmentResultsDocument: Encodable {
        var assessmentResults: AssessmentResults

        enum CodingKeys: String, CodingKey { case assessmentResults = "assessment-results" }
    }

    struct AssessmentResults: Encodable {
        var uuid: String
        var metadata: Metadata
        var importAP: ImportAP
        var results: [Result]
        var backMatter: BackMatter

        enum CodingKeys: String, CodingKey {
            case uuid, metadata, importAP = "import-ap", results, backMatter = "back-matter"
        }
    }

    struct ImportAP: Encodable {
        var href: String
        var remarks: String?
    }

    struct BackMatter: Encodable {
        var resources: [Resource]
    }

    struct Resource: Encodable {
        var uuid: String
        var title: String
        var description: String
        var rlinks: [ResourceLink]?
    }

    struct ResourceLink: Encodable {
        var href: String
        var mediaType: String?

        enum CodingKeys: String, CodingKey { case href, mediaType = "media-type" }
    }

    struct Result: Encodable {
        var uuid: String
        var title: String
        var description: String
        var start: String
        var end: String
        var props: [Property]?
        var localDefinitions: LocalDefinitions
        var reviewedControls: ReviewedControls
        var observations: [Observation]?
        var findings: [Finding]?

        enum CodingKeys: String, CodingKey {
            case uuid, title, description, start, end, props, localDefinitions = "local-definitions",
                 reviewedControls = "reviewed-controls", observations, findings
        }
    }

    struct LocalDefinitions: Encodable {
        var components: [SystemComponent]
        var assessmentAssets: AssessmentAssets

        enum CodingKeys: String, CodingKey { case components, assessmentAssets = "assessment-assets" }
    }

    struct SystemComponent: Encodable {
        var uuid: String
        var type: String
        var title: String
        var description: String
        var props: [Property]?
        var links: [Link]?
        var status: State
    }

    struct State: Encodable {
        var state: String
    }

    struct AssessmentAssets: Encodable {
        var components: [SystemComponent]
        var assessmentPlatforms: [AssessmentPlatform]

        enum CodingKeys: String, CodingKey { case components, assessmentPlatforms = "assessment-platforms" }
    }

    struct AssessmentPlatform: Encodable {
        var uuid: String
        var title: String
        var usesComponents: [ComponentReference]

        enum CodingKeys: String, CodingKey { case uuid, title, usesComponents = "uses-components" }
    }

    struct ComponentReference: Encodable {
        var componentUUID: String

        enum CodingKeys: String, CodingKey { case componentUUID = "component-uuid" }
    }

    struct ReviewedControls: Encodable {
        var controlSelections: [ControlSelection]

        enum CodingKeys: String, CodingKey { case controlSelections = "control-selections" }
    }

    struct ControlSelection: Encodable {
        var description: String?
        var includeControls: [ControlReference]

        enum CodingKeys: String, CodingKey { case description, includeControls = "include-controls" }
    }

    struct ControlReference: Encodable {
        var controlID: String

        enum CodingKeys: String, CodingKey { case controlID = "control-id" }
    }

    struct Observation: Encodable {
        var uuid: String
        var title: String
        var description: String
        var props: [Property]?
        var methods: [String]
        var types: [String]
        var origins: [Origin]
        var subjects: [Subject]
        var relevantEvidence: [Evidence]?
        var collected: String

        enum CodingKeys: String, CodingKey {
            case uuid, title, description, props, methods, types, origins, subjects, relevantEvidence = "relevant-evidence", collected
        }
    }

    struct Origin: Encodable {
        var actors: [Actor]
    }

    struct Actor: Encodable {
        var type: String
        var actorUUID: String

        enum CodingKeys: String, CodingKey { case type, actorUUID = "actor-uuid" }
    }

    struct Subject: Encodable {
        var subjectUUID: String
        var type: String

        enum CodingKeys: String, CodingKey { case subjectUUID = "subject-uuid", type }
    }

    struct Evidence: Encodable {
        var description: String
    }

    struct Finding: Encodable {
        var uuid: String
        var title: String
        var description: String
        var props: [Property]?
        var origins: [Origin]
        var target: Target
        var relatedObservations: [ObservationReference]

        enum CodingKeys: String, CodingKey {
            case uuid, title, description, props, origins, target, relatedObservations = "related-observations"
        }
    }

    struct Target: Encodable {
        var type: String
        var targetID: String
        var status: Status
        var implementationStatus: State?

        enum CodingKeys: String, CodingKey {
            case type, targetID = "target-id", status, implementationStatus = "implementation-status"
        }
    }

    struct Status: Encodable {
        var state: String
        var reason: String
        var remarks: String?
    }

    struct ObservationReference: Encodable {
        var observationUUID: String

        enum CodingKeys: String, CodingKey { case observationUUID = "observation-uuid" }
    }

    // MARK: Text

    /// OSCAL's single-line strings and titles: whitespace runs (newlines too) become one space,
    /// none at either end; never empty.
    static func line(_ text: String) -> String {
        let words = text.split(whereSeparator: \.isWhitespace)
        return words.isEmpty ? "-" : words.joined(separator: " ")
    }

    static func nonEmpty<T>(_ array: [T]) -> [T]? { array.isEmpty ? nil : array }

    /// RFC 3339 UTC, as OSCAL's date-time-with-timezone wants.
    static func time(_ date: Date) -> String { AuditTime.format(date) }

    /// Pretty-printed, keys sorted.
    static func encode(_ value: some Encodable) throws -> Data {
        try ReportJSON.encoder().encode(value)
    }
}
