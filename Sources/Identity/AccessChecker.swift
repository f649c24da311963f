import Foundation

/// A user's roles merged (the reference gateway's rules: smallest non-zero limit, shortest
/// timeout, OR for "require"-style booleans, AND for file copy, strict wins, deny wins), and the
/// answer to "may this user log in as L on node N".
public struct AccessChecker: Sendable {
    public let user: String
    public let roles: [Role]
    public let traits: [String: [String]]

    public init(user: String, roles: [Role], traits: [String: [String]]) {
        self.user = user
        self.roles = roles
        self.traits = traits
    }

    public enum Decision: Sendable, Equatable {
        case allowed
        case denied(String)
    }

    /// Whether `login` on the node named `node` with `labels` is allowed, and why not.
    public func checkLogin(_ login: String, node: String, labels: [String: String]) -> Decision {
        let target = "access to node \"\(node)\" as login \"\(login)\" denied for user \"\(user)\""
        for role in roles {
            if role.deny.expandedLogins(traits: traits).contains(where: { $0 == login || $0 == "*" }) {
                return .denied("\(target): role \"\(role.name)\" denies login \"\(login)\"")
            }
            if role.deny.matches(labels: labels) {
                return .denied("\(target): role \"\(role.name)\" denies nodes with these labels")
            }
        }
        let grantingLogin = roles.filter { $0.allow.expandedLogins(traits: traits).contains(login) }
        guard !grantingLogin.isEmpty else { return .denied("\(target): no role allows login \"\(login)\"") }
        guard grantingLogin.contains(where: { $0.allow.matches(labels: labels) }) else {
            return .denied("\(target): the roles that allow login \"\(login)\" (\(grantingLogin.map(\.name).joined(separator: ", "))) do not match the node's labels")
        }
        return .allowed
    }

    /// Every login some role allows and none denies: the certificate's principals.
    public var logins: [String] {
        let denied = Set(roles.flatMap { $0.deny.expandedLogins(traits: traits) })
        if denied.contains("*") { return [] }
        var seen = Set<String>()
        return roles.flatMap { $0.allow.expandedLogins(traits: traits) }
            .filter { !denied.contains($0) && !$0.isEmpty && seen.insert($0).inserted }
    }

    /// Whether some role lets the user see or reach a node with these labels at all.
    public func canSee(labels: [String: String]) -> Bool {
        !roles.contains { $0.deny.matches(labels: labels) } && roles.contains { $0.allow.matches(labels: labels) }
    }

    /// Whether some role allows `verb` on `resource` and none denies it (default deny).
    public func may(_ verb: EvidenceVerb, _ resource: EvidenceResource) -> Bool {
        !roles.contains { $0.deny.grants(verb, on: resource) } && roles.contains { $0.allow.grants(verb, on: resource) }
    }

    // MARK: Merged options

    private func values<T>(_ path: KeyPath<RoleOptions, T?>) -> [T] { roles.compactMap { $0.options[keyPath: path] } }

    /// Shortest set value; `cap` (the cluster's) when none is set, and never above it.
    public func maxSessionTTL(cap: Duration) -> Duration { min(values(\.maxSessionTTL).min() ?? cap, cap) }

    /// Smallest non-zero limit; 0 = unlimited.
    public var maxConnections: Int { Self.smallestLimit(values(\.maxConnections)) }
    public var maxSessions: Int { Self.smallestLimit(values(\.maxSessions)) }

    static func smallestLimit(_ limits: [Int]) -> Int { limits.filter { $0 > 0 }.min() ?? 0 }

    /// The shortest of the roles' timeouts and the cluster's; `nil` = never.
    public func clientIdleTimeout(cluster: Duration?) -> Duration? {
        // The cluster's timeout is an upper bound: a role may shorten it, never lengthen or lift it.
        let set = values(\.clientIdleTimeout).compactMap { if case .after(let d) = $0 { return d } else { return nil } }
        return (set + (cluster.map { [$0] } ?? [])).min()
    }

    public func disconnectExpiredCert(cluster: Bool) -> Bool {
        let set = values(\.disconnectExpiredCert)
        return set.isEmpty ? cluster : set.contains(true)
    }

    /// Off unless a role turns it on (the reference defaults to on; an appliance for regulated
    /// networks does not open tunnels nobody asked for).
    public var portForwarding: Bool { values(\.portForwarding).contains(true) }
    public var forwardAgent: Bool { values(\.forwardAgent).contains(true) }
    /// On unless a role turns it off.
    public var sshFileCopy: Bool { !values(\.sshFileCopy).contains(false) }

    public func lockingMode(cluster: RoleOptions.LockingMode) -> RoleOptions.LockingMode {
        let set = values(\.lock)
        return set.isEmpty ? cluster : (set.contains(.strict) ? .strict : .bestEffort)
    }

    /// How the node with `labels` provisions the login's host user, from the roles that allow
    /// that node (a role for other nodes neither enables nor widens it): off if any of them lacks
    /// it, else the strictest (`drop` beats `keep`: no account outlives its sessions unless every
    /// role says so); the groups and sudoers lines those roles allow, less what any role denies
    /// (`*` denies all).
    public func hostUser(labels: [String: String]) -> HostUserPolicy {
        let matching = roles.filter { $0.allow.matches(labels: labels) }
        let modes = matching.map { $0.options.createHostUserMode ?? .off }
        let mode: RoleOptions.HostUserMode = modes.isEmpty || modes.contains(.off) ? .off : (modes.contains(.drop) ? .drop : .keep)
        func allowed(_ path: KeyPath<RoleConditions, [String]>) -> [String] {
            let denied = Set(roles.flatMap { $0.deny[keyPath: path] })
            if denied.contains("*") { return [] }
            var seen = Set<String>()
            return matching.sorted { $0.name < $1.name }.flatMap { $0.allow[keyPath: path] }.filter { !denied.contains($0) && seen.insert($0).inserted }
        }
        return HostUserPolicy(mode: mode, groups: allowed(\.hostGroups).sorted(), sudoers: allowed(\.hostSudoers))
    }

    /// What enhanced recording watches (on a node that has it): the union of the roles' lists;
    /// commands and connections when no role sets one (the reference's default).
    public var enhancedRecording: Set<RoleOptions.RecordedActivity> {
        let set = values(\.enhancedRecording)
        return set.isEmpty ? [.command, .network] : Set(set.flatMap { $0 })
    }

    public var recordSession: RoleOptions.RecordingMode { values(\.recordSession).contains(.strict) ? .strict : .bestEffort }


    /// The OpenSSH certificate extensions these roles grant.
    public var certificateExtensions: [String: String] {
        var extensions = ["permit-pty": ""]
        if portForwarding { extensions["permit-port-forwarding"] = "" }
        if forwardAgent { extensions["permit-agent-forwarding"] = "" }
        return extensions
    }
}

/// What a node does with a session's login on its host (`AccessChecker.hostUser(labels:)`).
public struct HostUserPolicy: Sendable, Equatable {
    public var mode: RoleOptions.HostUserMode
    /// Supplementary groups, sorted.
    public var groups: [String]
    /// sudoers lines (without the login), in role-name order.
    public var sudoers: [String]

    public init(mode: RoleOptions.HostUserMode, groups: [String] = [], sudoers: [String] = []) {
        self.mode = mode
        self.groups = groups
        self.sudoers = sudoers
    }
}
