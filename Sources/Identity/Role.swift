import Foundation

/// A role: what its holders may do (`allow`), what they may never do (`deny`, which wins), and
/// the session controls that apply to them (`options`). Kept as a resource, written in YAML
/// (`pcctl create -f role.yaml`), stored as JSON.
public struct Role: Sendable, Equatable, Codable {
    public static let kind = "role"
    public static let version = "v1"

    public var name: String
    public var description: String
    public var options: RoleOptions
    public var allow: RoleConditions
    public var deny: RoleConditions

    public init(name: String, description: String = "", options: RoleOptions = RoleOptions(),
                allow: RoleConditions = RoleConditions(), deny: RoleConditions = RoleConditions()) {
        self.name = name
        self.description = description
        self.options = options
        self.allow = allow
        self.deny = deny
    }
}

/// Session controls. `nil` means "not set here": the cluster's value, or another role's, applies.
public struct RoleOptions: Sendable, Equatable, Codable {
    public var maxSessionTTL: Duration?
    /// 0 = unlimited.
    public var maxConnections: Int?
    /// 0 = unlimited.
    public var maxSessions: Int?
    public var clientIdleTimeout: IdleTimeout?
    public var disconnectExpiredCert: Bool?
    public var portForwarding: Bool?
    public var forwardAgent: Bool?
    public var sshFileCopy: Bool?
    public var lock: LockingMode?
    public var createHostUserMode: HostUserMode?
    public var enhancedRecording: [RecordedActivity]?
    public var recordSession: RecordingMode?

    public init() {}

    public enum IdleTimeout: Sendable, Equatable, Codable {
        case never
        case after(Duration)
    }

    public enum LockingMode: String, Sendable, Codable, CaseIterable { case strict, bestEffort = "best_effort" }
    /// `drop`: the host user is removed with its last session; the reference's `insecure-drop`
    /// is read as `drop` (stored roles and its YAML alike).
    public enum HostUserMode: String, Sendable, Codable, CaseIterable {
        case off, keep, drop

        public init(from decoder: Decoder) throws {
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let mode = Self(rawValue: text == "insecure-drop" ? "drop" : text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown create_host_user_mode '\(text)'"))
            }
            self = mode
        }
    }
    public enum RecordedActivity: String, Sendable, Codable, CaseIterable { case command, network, disk }
    public enum RecordingMode: String, Sendable, Codable, CaseIterable { case bestEffort = "best_effort", strict }
}

/// What a role may do with the appliance's own evidence, beyond reaching servers: read the
/// audit log, list, end and watch anyone's sessions, read the compliance reports. Nobody may
/// until a role allows it (`rules: {audit: [read]}`), and a role's deny wins — so who can read
/// the evidence is decided per role, not by who can log in.
public enum EvidenceResource: String, Sendable, Codable, CaseIterable, CodingKeyRepresentable {
    case audit, sessions, reports

    /// What can be done to each.
    public var verbs: [EvidenceVerb] {
        switch self {
        case .audit: [.read]
        case .sessions: [.list, .kill, .read]
        case .reports: [.read]
        }
    }
}

public enum EvidenceVerb: String, Sendable, Codable, CaseIterable {
    /// See that they exist (live sessions).
    case list
    /// Open one: the audit log's events, any session's recording, a report.
    case read
    /// End a live session.
    case kill
}

/// Who and where: OS logins (may name traits, `{{internal.logins}}`), node labels (a label
/// name or value `*` matches anything), host user groups and sudoers lines, and rules over the
/// appliance's evidence.
public struct RoleConditions: Sendable, Equatable, Codable {
    public var logins: [String]
    public var nodeLabels: [String: [String]]
    public var hostGroups: [String]
    public var hostSudoers: [String]
    /// Nil in roles stored before rules existed: none.
    public var rules: [EvidenceResource: [EvidenceVerb]]?

    public init(logins: [String] = [], nodeLabels: [String: [String]] = [:], hostGroups: [String] = [], hostSudoers: [String] = [],
                rules: [EvidenceResource: [EvidenceVerb]]? = nil) {
        self.logins = logins
        self.nodeLabels = nodeLabels
        self.hostGroups = hostGroups
        self.hostSudoers = hostSudoers
        self.rules = rules
    }

    func grants(_ verb: EvidenceVerb, on resource: EvidenceResource) -> Bool {
        rules?[resource]?.contains(verb) ?? false
    }

    /// Whether a node with `labels` matches: every label named here must match one of its
    /// values. No labels named means no node.
    func matches(labels: [String: String]) -> Bool {
        guard !nodeLabels.isEmpty else { return false }
        return nodeLabels.allSatisfy { name, values in
            if name == "*" { return values.contains("*") }
            guard let value = labels[name] else { return false }
            return values.contains("*") || values.contains(value)
        }
    }

    /// The logins with `{{internal.NAME}}` replaced by the user's trait values (a template
    /// whose trait the user lacks yields nothing).
    func expandedLogins(traits: [String: [String]]) -> [String] {
        logins.flatMap { login -> [String] in
            guard let trait = Self.traitName(login) else { return [login] }
            return traits[trait] ?? []
        }
    }

    static func traitName(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard trimmed.hasPrefix("{{"), trimmed.hasSuffix("}}") else { return nil }
        let inner = trimmed.dropFirst(2).dropLast(2).trimmingCharacters(in: .whitespaces)
        guard inner.hasPrefix("internal.") else { return nil }
        return String(inner.dropFirst("internal.".count))
    }
}
