import Audit
import Foundation
import YAMLNodes

/// One control file, read through `NodeReader` so every mistake comes back as
/// `file:line:column: reason` with the nearest valid key or rule for a typo:
///
///     id: AC-10
///     title: Concurrent Session Control
///     baselines: [high]
///     parameters:
///       - id: ac-10_odp.02
///         label: number
///         high: three (3) sessions for privileged access and two (2) sessions for non-privileged access
///     implementation: >
///       What Portcullis does.
///     checks:
///       - id: max-connections
///         description: every role limits a user's concurrent connections
///         baselines: [high]                     # optional: the control's
///         rule: {roles_max_connections_at_most: {privileged: 3, non_privileged: 2}}
///     evidence: [connection.start, session.rejected]
///     verified_by: [ConnectionSemaphoreTests]   # optional
enum ControlCatalogYAML {
    static let keys = ["id", "title", "baselines", "note", "parameters", "implementation", "checks", "evidence", "verified_by"]
    static let parameterKeys = ["id", "label", "low", "moderate", "high", "portcullis"]
    static let checkKeys = ["id", "description", "baselines", "rule"]

    static func control(_ source: String, file: String) throws -> Control {
        let reader = NodeReader(file: file)
        let documents: [Node]
        do {
            documents = try YAMLComposer.documents(source)
        } catch {
            throw ConfigurationError(syntax: error, file: file)
        }
        guard let root = try reader.single(documents, what: "control") else {
            throw ConfigurationError(file: file, message: "the file is empty: a control needs \(required.joined(separator: ", "))")
        }
        let top = try reader.mapping(root, path: "", keys: keys)
        func need(_ key: String) throws -> Node {
            guard let node = top[key] else { throw reader.error(root, "a control needs '\(key)' (it has \(top.keys.sorted().joined(separator: ", ")))") }
            return node
        }

        let idNode = try need("id")
        let id = try reader.string(idNode, path: "id")
        guard id.wholeMatch(of: /[A-Z]{2}-[0-9]{1,2}(\([0-9]{1,2}\))?/) != nil else {
            throw reader.error(idNode, "'id' must be a control id such as AC-10 or AC-2(12), not '\(id)'")
        }
        var control = Control(id: id, title: "", baselines: [], implementation: "", checks: [], evidence: [])
        let fileName = (file as NSString).lastPathComponent
        guard fileName == control.fileName else {
            throw reader.error(idNode, "the file for \(id) must be named \(control.fileName), not \(fileName)")
        }
        control.title = try text(need("title"), path: "title", reader: reader)
        control.baselines = try baselines(need("baselines"), path: "baselines", reader: reader)
        if let note = top["note"] { control.note = try text(note, path: "note", reader: reader) }
        if let parameters = top["parameters"] {
            control.parameters = try reader.sequence(parameters, path: "parameters").enumerated().map { index, node in
                try parameter(node, path: "parameters[\(index)]", control: control, reader: reader)
            }
            var seen = Set<String>()
            for (node, parameter) in zip(try reader.sequence(parameters, path: "parameters"), control.parameters) where !seen.insert(parameter.id).inserted {
                throw reader.error(node, "parameter '\(parameter.id)' appears twice")
            }
        }
        control.implementation = try text(need("implementation"), path: "implementation", reader: reader)

        let checksNode = try need("checks")
        let checkNodes = try reader.sequence(checksNode, path: "checks")
        guard !checkNodes.isEmpty else {
            throw reader.error(checksNode, "'checks' needs at least one check; where nothing can be automated, say what a person must check with rule: {manual: \"...\"}")
        }
        var checkIDs = Set<String>()
        for (index, node) in checkNodes.enumerated() {
            let check = try self.check(node, path: "checks[\(index)]", control: control, reader: reader)
            guard checkIDs.insert(check.id).inserted else { throw reader.error(node, "check '\(check.id)' appears twice in \(id)") }
            control.checks.append(check)
        }

        let known = EventCatalog.kinds.map(\.name).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        for node in try reader.sequence(need("evidence"), path: "evidence") {
            let event = try reader.string(node, path: "evidence")
            guard known.contains(event) else {
                var message = "'evidence' names '\(event)', which is not an audit event (docs/events.md)"
                if let near = NodeReader.nearest(event, in: known) { message += "; did you mean '\(near)'?" }
                throw reader.error(node, message)
            }
            control.evidence.append(event)
        }
        if let tests = top["verified_by"] {
            control.verifiedBy = try reader.sequence(tests, path: "verified_by").map { node in
                let name = try reader.string(node, path: "verified_by")
                guard name.wholeMatch(of: /[A-Z][A-Za-z0-9]*(\.test[A-Za-z0-9_]*)?/) != nil else {
                    throw reader.error(node, "'verified_by' entries are a test class or Class.testMethod, not '\(name)'")
                }
                return name
            }
        }
        return control
    }

    static var required: [String] { ["id", "title", "baselines", "implementation", "checks", "evidence"] }

    static func text(_ node: Node, path: String, reader: NodeReader) throws -> String {
        let value = try reader.string(node, path: path).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !value.isEmpty else { throw reader.error(node, "'\(path)' must not be empty") }
        return value
    }

    static func baselines(_ node: Node, path: String, reader: NodeReader) throws -> [Baseline] {
        var baselines: [Baseline] = []
        for item in try reader.sequence(node, path: path) {
            let baseline: Baseline = try reader.enumeration(item, path: path)
            guard !baselines.contains(baseline) else { throw reader.error(item, "'\(path)' names \(baseline.rawValue) twice") }
            baselines.append(baseline)
        }
        return baselines.sorted()
    }

    static func parameter(_ node: Node, path: String, control: Control, reader: NodeReader) throws -> Control.Parameter {
        let map = try reader.mapping(node, path: path, keys: parameterKeys)
        guard let idNode = map["id"], let labelNode = map["label"] else { throw reader.error(node, "'\(path)' needs an 'id' and a 'label'") }
        let id = try reader.string(idNode, path: "\(path).id")
        guard Control.Parameter.isValidID(id) else {
            throw reader.error(idNode, "'\(path).id' must be an OSCAL parameter id such as ac-10_odp.02, not '\(id)'")
        }
        var parameter = Control.Parameter(id: id, label: try text(labelNode, path: "\(path).label", reader: reader), values: [:])
        for baseline in Baseline.allCases {
            let value = map[baseline.rawValue]
            switch (value, control.baselines.contains(baseline)) {
            case let (value?, true): parameter.values[baseline] = try text(value, path: "\(path).\(baseline.rawValue)", reader: reader)
            case let (value?, false):
                throw reader.error(value, "'\(path).\(baseline.rawValue)': \(control.id) is not in the \(baseline.title) baseline (baselines: \(control.baselines.map(\.rawValue).joined(separator: ", "))); remove this value")
            case (nil, true):
                throw reader.error(node, "parameter '\(id)' has no '\(baseline.rawValue)' value, and \(control.id) is in the \(baseline.title) baseline: give FedRAMP's value, or CSP-defined where FedRAMP sets none")
            case (nil, false): break
            }
        }
        if let portcullis = map["portcullis"] { parameter.portcullis = try text(portcullis, path: "\(path).portcullis", reader: reader) }
        return parameter
    }

    static func check(_ node: Node, path: String, control: Control, reader: NodeReader) throws -> Control.Check {
        let map = try reader.mapping(node, path: path, keys: checkKeys)
        for key in ["id", "description", "rule"] where map[key] == nil {
            throw reader.error(node, "'\(path)' needs '\(key)' (a check has id, description and rule)")
        }
        let id = try reader.string(map["id"]!, path: "\(path).id")
        // An OSCAL token too (a property's class): it starts with a letter.
        guard id.wholeMatch(of: /[a-z][a-z0-9]*(-[a-z0-9]+)*/) != nil else {
            throw reader.error(map["id"]!, "'\(path).id' must be lower-case words joined by '-', starting with a letter, not '\(id)'")
        }
        var check = Control.Check(id: id, description: try text(map["description"]!, path: "\(path).description", reader: reader),
                                  rule: try rule(map["rule"]!, path: "\(path).rule", reader: reader))
        if let baselinesNode = map["baselines"] {
            let baselines = try baselines(baselinesNode, path: "\(path).baselines", reader: reader)
            if !control.baselines.isEmpty, let outside = baselines.first(where: { !control.baselines.contains($0) }) {
                throw reader.error(baselinesNode, "'\(path).baselines' names \(outside.rawValue), but \(control.id) is only in \(control.baselines.map(\.rawValue).joined(separator: ", "))")
            }
            guard !baselines.isEmpty else { throw reader.error(baselinesNode, "'\(path).baselines' is empty: leave it out to check at every baseline") }
            check.baselines = baselines
        }
        return check
    }

    /// `rule: name`, or `rule: {name: settings}`.
    static func rule(_ node: Node, path: String, reader: NodeReader) throws -> ControlRule {
        let nameNode: Node, argument: Node?
        switch node {
        case .scalar: (nameNode, argument) = (node, nil)
        case .mapping(let mapping) where mapping.count == 1: (nameNode, argument) = (mapping.first!.key, mapping.first!.value)
        default: throw reader.error(node, "'\(path)' must be a rule name, or a mapping of one rule name to its settings")
        }
        let name = try reader.string(nameNode, path: path)
        guard ControlRule.names.contains(name) else {
            var message = "unknown rule '\(name)' in '\(path)'"
            if let near = NodeReader.nearest(name, in: ControlRule.names) { message += "; did you mean '\(near)'?" }
            throw reader.error(nameNode, message + " (rules: \(ControlRule.names.joined(separator: ", ")))")
        }
        let rulePath = "\(path).\(name)"
        func settings() throws -> Node {
            guard let argument else { throw reader.error(nameNode, "rule '\(name)' needs settings: write it as {\(name): ...}") }
            return argument
        }
        func duration(_ node: Node, path: String) throws -> Duration {
            let text = try reader.string(node, path: path)
            guard let value = ControlRule.parseDuration(text), value > .zero else {
                throw reader.error(node, "'\(path)' must be a duration such as 90d, 12h or 15m, not '\(text)'")
            }
            return value
        }
        func pair(_ keys: [String]) throws -> [String: Node] {
            let node = try settings()
            let map = try reader.mapping(node, path: rulePath, keys: keys)
            if let missing = keys.first(where: { map[$0] == nil }) { throw reader.error(node, "'\(rulePath)' needs '\(missing)'") }
            return map
        }
        switch name {
        case "roles_max_connections_at_most":
            let map = try pair(["privileged", "non_privileged"])
            return .rolesMaxConnectionsAtMost(privileged: try reader.integer(map["privileged"]!, path: "\(rulePath).privileged", within: 1...100_000),
                                              nonPrivileged: try reader.integer(map["non_privileged"]!, path: "\(rulePath).non_privileged", within: 1...100_000))
        case "idle_timeout_at_most":
            let map = try pair(["privileged", "non_privileged"])
            return .idleTimeoutAtMost(privileged: try duration(map["privileged"]!, path: "\(rulePath).privileged"),
                                      nonPrivileged: try duration(map["non_privileged"]!, path: "\(rulePath).non_privileged"))
        case "certificate_lifetime_at_most": return .certificateLifetimeAtMost(try duration(settings(), path: rulePath))
        case "audit_retention_at_least": return .auditRetentionAtLeast(try duration(settings(), path: rulePath))
        case "manual": return .manual(try text(settings(), path: rulePath, reader: reader))
        case "known_gap": return .knownGap(try text(settings(), path: rulePath, reader: reader))
        default:
            guard let rule = ControlRule.withoutSettings[name] else { preconditionFailure("rule '\(name)' is in ControlRule.names but not read") }
            if let argument, !(argument.scalar.map { $0.string.isEmpty } ?? false) {
                throw reader.error(argument, "rule '\(name)' takes no settings: write it as just '\(name)'")
            }
            return rule
        }
    }
}
