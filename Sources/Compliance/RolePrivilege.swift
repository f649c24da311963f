import Identity

/// Which roles give privileged access, for AC-10's two numbers: a role is privileged when it
/// grants login `root` or any `host_sudoers` entry.
extension Role {
    /// The logins this role grants on its own: allowed and not denied by itself (`*` denies all).
    /// Trait templates (`{{internal.logins}}`) are kept as written.
    var grantedLogins: [String] {
        if deny.logins.contains("*") { return [] }
        var seen = Set<String>()
        return allow.logins.filter { !deny.logins.contains($0) && seen.insert($0).inserted }
    }

    var isPrivileged: Bool { grantedLogins.contains("root") || !allow.hostSudoers.isEmpty }

    /// Logins that name a trait: what they become depends on each user.
    var templateLogins: [String] { grantedLogins.filter { $0.contains("{{") } }

    /// Why the role is of its kind, as a sentence.
    var privilegeReason: String {
        var grounds: [String] = []
        if grantedLogins.contains("root") { grounds.append("grants login root") }
        if !allow.hostSudoers.isEmpty { grounds.append("grants host_sudoers entries") }
        if !grounds.isEmpty { return "Privileged: it \(grounds.joined(separator: " and "))." }
        var reason = "Non-privileged: it grants neither login root nor host_sudoers entries."
        if !templateLogins.isEmpty {
            reason += " Its logins \(templateLogins.joined(separator: ", ")) depend on each user's traits; if they can yield root, list root"
                + " in the role explicitly so it is judged as privileged (judged as non-privileged, the stricter number, here)."
        }
        return reason
    }
}
