import Foundation
import LaunchProtocol
import YAMLNodes

/// Roles in and out of YAML, the form administrators write:
///
///     kind: role
///     version: v1
///     metadata: {name: access, description: "..."}
///     spec:
///       options: {max_session_ttl: 8h, max_connections: 2, ...}
///       allow: {logins: [ubuntu, "{{internal.logins}}"], node_labels: {env: [prod]}}
///       deny: {logins: [root]}
///
/// Mistakes are reported with file, line and column.
public enum RoleYAML {
    static let optionKeys = ["max_session_ttl", "max_connections", "max_sessions", "client_idle_timeout", "disconnect_expired_cert",
                             "port_forwarding", "forward_agent", "ssh_file_copy", "lock", "create_host_user_mode",
                             "enhanced_recording", "record_session"]
    static let conditionKeys = ["logins", "node_labels", "host_groups", "host_sudoers", "rules"]

    /// Every role in a file (documents separated by `---`).
    public static func parse(_ text: String, file: String) throws -> [Role] {
        let reader = NodeReader(file: file)
        let documents: [Node]
        do {
            documents = try YAMLComposer.documents(text)
        } catch {
            throw ConfigurationError(syntax: error, file: file)
        }
        guard !documents.isEmpty else { throw ConfigurationError(file: file, message: "no resource in the file") }
        return try documents.map { try role(from: $0, reader: reader) }
    }

    static func role(from node: Node, reader: NodeReader) throws -> Role {
        let top = try reader.mapping(node, path: "", keys: ["kind", "version", "metadata", "spec"])
        guard let kindNode = top["kind"] else { throw reader.error(node, "a resource needs 'kind: role'") }
        _ = try reader.choice(kindNode, path: "kind", from: [Role.kind])
        if let version = top["version"] { _ = try reader.choice(version, path: "version", from: [Role.version]) }
        guard let metadataNode = top["metadata"] else { throw reader.error(node, "a role needs 'metadata' with its 'name'") }
        let metadata = try reader.mapping(metadataNode, path: "metadata", keys: ["name", "description"])
        guard let nameNode = metadata["name"] else { throw reader.error(metadataNode, "a role needs 'metadata.name'") }
        var role = Role(name: try reader.name(nameNode, path: "metadata.name"))
        if let description = metadata["description"] { role.description = try reader.string(description, path: "metadata.description") }
        guard let specNode = top["spec"] else { return role }
        let spec = try reader.mapping(specNode, path: "spec", keys: ["options", "allow", "deny"])
        if let options = spec["options"] { role.options = try self.options(options, reader: reader) }
        if let allow = spec["allow"] { role.allow = try conditions(allow, path: "spec.allow", reader: reader) }
        if let deny = spec["deny"] { role.deny = try conditions(deny, path: "spec.deny", reader: reader) }
        return role
    }

    static func options(_ node: Node, reader: NodeReader) throws -> RoleOptions {
        let keys = try reader.mapping(node, path: "spec.options", keys: optionKeys)
        var options = RoleOptions()
        func path(_ key: String) -> String { "spec.options.\(key)" }
        for (key, value) in keys {
            switch key {
            case "max_session_ttl": options.maxSessionTTL = try reader.duration(value, path: path(key), within: .seconds(60)...Duration.seconds(30 * 3600))
            case "max_connections": options.maxConnections = try reader.integer(value, path: path(key), within: 0...100_000)
            case "max_sessions": options.maxSessions = try reader.integer(value, path: path(key), within: 0...10_000)
            case "client_idle_timeout":
                options.clientIdleTimeout = try reader.string(value, path: path(key)) == "never"
                    ? .never : .after(try reader.duration(value, path: path(key), within: .seconds(1)...Duration.seconds(7 * 86400)))
            case "disconnect_expired_cert": options.disconnectExpiredCert = try reader.bool(value, path: path(key))
            case "port_forwarding": options.portForwarding = try reader.bool(value, path: path(key))
            case "forward_agent": options.forwardAgent = try reader.bool(value, path: path(key))
            case "ssh_file_copy": options.sshFileCopy = try reader.bool(value, path: path(key))
            case "lock": options.lock = try reader.enumeration(value, path: path(key))
            case "create_host_user_mode":
                // The reference's `insecure-drop` is `drop`.
                let mode = try reader.choice(value, path: path(key), from: RoleOptions.HostUserMode.allCases.map(\.rawValue) + ["insecure-drop"])
                options.createHostUserMode = mode == "insecure-drop" ? .drop : RoleOptions.HostUserMode(rawValue: mode)
            case "enhanced_recording":
                options.enhancedRecording = try reader.sequence(value, path: path(key)).map { try reader.enumeration($0, path: path(key)) }
            case "record_session":
                // `record_session: strict`, or the reference's map form `record_session: {ssh: strict}`.
                if case .mapping = value {
                    let modes = try reader.mapping(value, path: path(key), keys: ["default", "ssh"])
                    if let mode = modes["ssh"] ?? modes["default"] { options.recordSession = try reader.enumeration(mode, path: path(key)) }
                } else {
                    options.recordSession = try reader.enumeration(value, path: path(key))
                }
            default: break
            }
        }
        return options
    }

    static func conditions(_ node: Node, path: String, reader: NodeReader) throws -> RoleConditions {
        let keys = try reader.mapping(node, path: path, keys: conditionKeys)
        var conditions = RoleConditions()
        func strings(_ key: String) throws -> [String] {
            guard let value = keys[key] else { return [] }
            return try reader.sequence(value, path: "\(path).\(key)").map { try reader.string($0, path: "\(path).\(key)") }
        }
        conditions.logins = try strings("logins")
        for (index, login) in conditions.logins.enumerated() where RoleConditions.traitName(login) == nil {
            guard Self.isValidLogin(login) else {
                throw reader.error(try reader.sequence(keys["logins"]!, path: "")[index],
                                   "'\(path).logins' entry '\(login)' is not a valid login name (letters, digits, '.', '_', '-'; or a trait such as {{internal.logins}})")
            }
        }
        conditions.hostGroups = try strings("host_groups")
        conditions.hostSudoers = try strings("host_sudoers")
        // What no host could apply is refused when written, not at someone's first session.
        // (`*` in a deny list removes every entry.)
        for (key, entries, check) in [("host_groups", conditions.hostGroups, HostUserRequest.groupProblem),
                                      ("host_sudoers", conditions.hostSudoers, HostUserRequest.sudoersProblem)] {
            for (index, entry) in entries.enumerated() where !(path.hasSuffix("deny") && entry == "*") {
                if let problem = check(entry) { throw reader.error(try reader.sequence(keys[key]!, path: "")[index], "'\(path).\(key)': \(problem)") }
            }
            let limit = key == "host_groups" ? HostUserRequest.maximumGroups : HostUserRequest.maximumSudoers
            if entries.count > limit { throw reader.error(keys[key]!, "'\(path).\(key)' has \(entries.count) entries; at most \(limit)") }
        }
        if let labels = keys["node_labels"] {
            guard case .mapping(let mapping) = labels else { throw reader.error(labels, "'\(path).node_labels' must map label names to a value or a list of values") }
            for (name, values) in mapping {
                let label = try reader.string(name, path: "\(path).node_labels")
                switch values {
                case .sequence: conditions.nodeLabels[label] = try reader.sequence(values, path: "\(path).node_labels.\(label)").map { try reader.string($0, path: "\(path).node_labels.\(label)") }
                default: conditions.nodeLabels[label] = [try reader.string(values, path: "\(path).node_labels.\(label)")]
                }
            }
        }
        if let rules = keys["rules"] {
            let parsed = try self.rules(rules, path: "\(path).rules", reader: reader)
            conditions.rules = parsed.isEmpty ? nil : parsed  // `rules: {}` is no rules (and renders as none)
        }
        return conditions
    }

    /// `rules: {audit: [read], sessions: [list, kill, read], reports: [read]}`.
    static func rules(_ node: Node, path: String, reader: NodeReader) throws -> [EvidenceResource: [EvidenceVerb]] {
        let entries = try reader.mapping(node, path: path, keys: EvidenceResource.allCases.map(\.rawValue))
        var rules: [EvidenceResource: [EvidenceVerb]] = [:]
        for (name, value) in entries {
            let resource = EvidenceResource(rawValue: name)!
            let items = try reader.sequence(value, path: "\(path).\(name)")
            rules[resource] = try items.map { item in
                let verb = try reader.choice(item, path: "\(path).\(name)", from: resource.verbs.map(\.rawValue))
                return EvidenceVerb(rawValue: verb)!
            }
        }
        return rules
    }

    /// What a POSIX login name may be (and `*` in deny lists).
    public static func isValidLogin(_ login: String) -> Bool {
        login == "*" || (!login.isEmpty && login.count <= 32 && !login.hasPrefix("-")
            && login.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
    }

    /// The role as YAML, in the form `parse` reads.
    public static func render(_ role: Role) -> String {
        var lines = ["kind: role", "version: \(Role.version)", "metadata:", "  name: \(quote(role.name))"]
        if !role.description.isEmpty { lines.append("  description: \(quote(role.description))") }
        lines.append("spec:")
        let o = role.options
        var options: [String] = []
        if let v = o.maxSessionTTL { options.append("max_session_ttl: \(NodeReader.format(v))") }
        if let v = o.maxConnections { options.append("max_connections: \(v)") }
        if let v = o.maxSessions { options.append("max_sessions: \(v)") }
        if let v = o.clientIdleTimeout {
            switch v {
            case .never: options.append("client_idle_timeout: never")
            case .after(let d): options.append("client_idle_timeout: \(NodeReader.format(d))")
            }
        }
        if let v = o.disconnectExpiredCert { options.append("disconnect_expired_cert: \(v ? "yes" : "no")") }
        if let v = o.portForwarding { options.append("port_forwarding: \(v ? "yes" : "no")") }
        if let v = o.forwardAgent { options.append("forward_agent: \(v ? "yes" : "no")") }
        if let v = o.sshFileCopy { options.append("ssh_file_copy: \(v ? "yes" : "no")") }
        if let v = o.lock { options.append("lock: \(v.rawValue)") }
        if let v = o.createHostUserMode { options.append("create_host_user_mode: \(v.rawValue)") }
        if let v = o.enhancedRecording { options.append("enhanced_recording: [\(v.map(\.rawValue).joined(separator: ", "))]") }
        if let v = o.recordSession { options.append("record_session: \(v.rawValue)") }
        if !options.isEmpty { lines.append("  options:"); lines += options.map { "    " + $0 } }
        for (name, conditions) in [("allow", role.allow), ("deny", role.deny)] {
            var body: [String] = []
            func list(_ key: String, _ values: [String]) {
                if !values.isEmpty { body.append("\(key): [\(values.map(quote).joined(separator: ", "))]") }
            }
            list("logins", conditions.logins)
            if !conditions.nodeLabels.isEmpty {
                body.append("node_labels:")
                for label in conditions.nodeLabels.keys.sorted() {
                    body.append("  \(quote(label)): [\(conditions.nodeLabels[label]!.map(quote).joined(separator: ", "))]")
                }
            }
            list("host_groups", conditions.hostGroups)
            list("host_sudoers", conditions.hostSudoers)
            if let rules = conditions.rules, !rules.isEmpty {
                body.append("rules:")
                for resource in EvidenceResource.allCases {
                    if let verbs = rules[resource] { body.append("  \(resource.rawValue): [\(verbs.map(\.rawValue).joined(separator: ", "))]") }
                }
            }
            if !body.isEmpty { lines.append("  \(name):"); lines += body.map { "    " + $0 } }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A YAML scalar that reads back as exactly `text` (double-quoted, JSON-style escapes).
    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f { out += String(format: "\\x%02X", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}
