import Identity

/// What each rule answers for a set of facts, and why.
extension ControlRule {
    public func evaluate(_ facts: ComplianceFacts, baseline: Baseline) -> (verdict: ControlVerdict, reasons: [String]) {
        let roles = facts.roles.sorted { $0.name < $1.name }
        switch self {
        case .fipsEnabled:
            return facts.fipsEnabled
                ? (.satisfied, ["FIPS mode is on: every cryptographic operation goes through the OpenSSL FIPS provider, which is integrity-checked and self-tested at start"])
                : (.notSatisfied, ["FIPS mode is off (fips.enabled: no): cryptography runs in OpenSSL's default provider; set fips.enabled: yes and point fips.openssl_config and fips.modules_dir at the FIPS module"])

        case let .rolesMaxConnectionsAtMost(privileged, nonPrivileged):
            guard !roles.isEmpty else {
                return (.manual, ["no roles exist, so nobody can connect yet; give every role max_connections: \(privileged) if privileged (login root or host_sudoers), \(nonPrivileged) otherwise"])
            }
            var failures: [String] = [], passes: [String] = []
            for role in roles {
                let limit = role.isPrivileged ? privileged : nonPrivileged
                let value = role.options.maxConnections ?? 0
                let who = Self.describe(role)
                if value == 0 {
                    failures.append("\(who) sets no max_connections, so its holders may hold any number of connections at once (unless another of their roles limits them): set spec.options.max_connections: \(limit)")
                } else if value > limit {
                    failures.append("\(who) allows \(value) connections per user at once; \(baseline.title) allows \(limit): set spec.options.max_connections: \(limit)")
                } else {
                    passes.append("\(who) allows \(value) connection\(value == 1 ? "" : "s") per user at once (at most \(limit))")
                }
            }
            return failures.isEmpty ? (.satisfied, passes) : (.notSatisfied, failures)

        case let .idleTimeoutAtMost(privileged, nonPrivileged):
            guard !roles.isEmpty else {
                return Self.judgeCluster(facts.clusterIdleTimeout, limit: nonPrivileged)
            }
            var failures: [String] = [], passes: [String] = []
            for role in roles {
                let limit = role.isPrivileged ? privileged : nonPrivileged
                let who = Self.describe(role)
                let (timeout, source) = Self.idleTimeout(of: role, cluster: facts.clusterIdleTimeout)
                let setting = role.isPrivileged ? "spec.options.client_idle_timeout: \(Self.format(limit))" : "spec.options.client_idle_timeout (or the cluster's) to \(Self.format(limit)) or less"
                guard let timeout else {
                    failures.append("\(who): idle connections are never ended (client_idle_timeout is never and the role sets none): set \(setting)")
                    continue
                }
                if timeout > limit {
                    failures.append("\(who): idle connections end after \(Self.format(timeout)) (\(source)); \(role.isPrivileged ? "privileged" : "user") sessions must end within \(Self.format(limit)): set \(setting)")
                } else {
                    passes.append("\(who): idle connections end after \(Self.format(timeout)) (\(source)), within \(Self.format(limit))")
                }
            }
            return failures.isEmpty ? (.satisfied, passes) : (.notSatisfied, failures)

        case .idleTimeoutSet:
            guard !roles.isEmpty else { return Self.judgeCluster(facts.clusterIdleTimeout, limit: nil) }
            var failures: [String] = [], passes: [String] = []
            for role in roles {
                let (timeout, source) = Self.idleTimeout(of: role, cluster: facts.clusterIdleTimeout)
                if let timeout {
                    passes.append("\(Self.describe(role)): idle connections end after \(Self.format(timeout)) (\(source))")
                } else {
                    failures.append("\(Self.describe(role)): idle connections are never ended: set auth_service.session_control.client_idle_timeout or the role's spec.options.client_idle_timeout")
                }
            }
            return failures.isEmpty ? (.satisfied, passes) : (.notSatisfied, failures)

        case let .certificateLifetimeAtMost(limit):
            let cap = facts.maxSessionTTL
            if cap <= limit {
                return (.satisfied, ["auth_service.max_session_ttl is \(Self.format(cap)): no certificate lives longer than \(Self.format(limit))"])
            }
            let long = roles.filter { ($0.options.maxSessionTTL ?? cap) > limit }
            if !roles.isEmpty, long.isEmpty {
                return (.satisfied, ["auth_service.max_session_ttl is \(Self.format(cap)), but every role limits certificates to \(Self.format(limit)) or less (max_session_ttl)"])
            }
            var reasons = ["auth_service.max_session_ttl is \(Self.format(cap)), longer than \(Self.format(limit)): set it to \(Self.format(limit))"]
            reasons += long.map { "\(Self.describe($0)) lets certificates live \(Self.format(min($0.options.maxSessionTTL ?? cap, cap)))" }
            return (.notSatisfied, reasons)

        case .disconnectExpiredCert:
            guard !roles.isEmpty else {
                return facts.disconnectExpiredCert
                    ? (.satisfied, ["auth_service.session_control.disconnect_expired_cert is on"])
                    : (.notSatisfied, ["auth_service.session_control.disconnect_expired_cert is off: connections outlive their certificate; set it to yes"])
            }
            let off = roles.filter { !($0.options.disconnectExpiredCert ?? facts.disconnectExpiredCert) }
            guard off.isEmpty else {
                return (.notSatisfied, off.map { role in
                    role.options.disconnectExpiredCert == false
                        ? "\(Self.describe(role)) sets disconnect_expired_cert: no, so its holders' connections outlive their certificate (unless another of their roles sets yes): remove it or set yes"
                        : "\(Self.describe(role)) takes the cluster's disconnect_expired_cert, which is off: set auth_service.session_control.disconnect_expired_cert: yes"
                })
            }
            return (.satisfied, ["connections end when their certificate expires, for every role (cluster: \(facts.disconnectExpiredCert ? "on" : "off, but every role sets yes"))"])

        case let .auditRetentionAtLeast(limit):
            guard let retention = facts.auditRetention else {
                return (.satisfied, ["audit records are kept online in audit.db for ever (nothing deletes them), at least \(Self.format(limit)); preserving them offline beyond that is the operator's"])
            }
            return retention >= limit
                ? (.satisfied, ["audit records are kept \(Self.format(retention)), at least \(Self.format(limit))"])
                : (.notSatisfied, ["audit records are kept only \(Self.format(retention)); keep them at least \(Self.format(limit)) online"])

        case .bannerSet:
            return facts.messageOfTheDaySet
                ? (.satisfied, ["auth_service.message_of_the_day is set: pcsh login shows it and requires it to be acknowledged, and the node and proxy show it before SSH authentication"])
                : (.notSatisfied, ["auth_service.message_of_the_day is empty, so no system use notification is shown: set it to the notice your authorizing official approved"])

        case .lockoutConfigured:
            let window = Self.format(facts.failedLoginWindow), lockout = Self.format(facts.lockoutDuration)
            guard (1...100).contains(facts.maxFailedLogins), facts.failedLoginWindow > .zero, facts.lockoutDuration > .zero else {
                return (.notSatisfied, ["auth_service.authentication is max_failed_logins \(facts.maxFailedLogins), failed_login_window \(window), lockout_duration \(lockout): each must be set, and max_failed_logins between 1 and 100 (SP 800-63B)"])
            }
            return (.satisfied, ["after \(facts.maxFailedLogins) failed login\(facts.maxFailedLogins == 1 ? "" : "s") within \(window) a user name is locked for \(lockout) (SP 800-63B allows at most 100)"])

        case .lockingModeStrict:
            guard !roles.isEmpty else {
                return facts.lockingMode == .strict
                    ? (.satisfied, ["auth_service.session_control.locking_mode is strict"])
                    : (.notSatisfied, ["auth_service.session_control.locking_mode is best_effort: when the lock list cannot be kept current, connections go on under locks that may be stale; set strict"])
            }
            let lax = roles.filter { ($0.options.lock ?? facts.lockingMode) == .bestEffort }
            guard lax.isEmpty else {
                return (.notSatisfied, lax.map { role in
                    role.options.lock == .bestEffort
                        ? "\(Self.describe(role)) sets lock: best_effort, so its holders' connections go on when the lock list cannot be kept current (unless another of their roles is strict): remove it or set strict"
                        : "\(Self.describe(role)) takes the cluster's locking_mode, best_effort: set auth_service.session_control.locking_mode: strict"
                })
            }
            return (.satisfied, ["every role's connections are refused or ended when the lock list cannot be kept current (strict)"])

        case .privilegedRecordingStrict:
            let privileged = roles.filter(\.isPrivileged)
            guard !privileged.isEmpty else { return (.satisfied, ["no role gives privileged access (login root or host_sudoers)"]) }
            let lax = privileged.filter { $0.options.recordSession != .strict }
            guard lax.isEmpty else {
                return (.notSatisfied, lax.map {
                    "\(Self.describe($0)) records best_effort: if its recording fails, a privileged session goes on unrecorded (unless another of the user's roles is strict): set spec.options.record_session: strict"
                })
            }
            return (.satisfied, privileged.map { "\(Self.describe($0)) records strictly: a session that cannot be recorded is refused or ended" })

        case let .manual(instruction):
            return (.manual, [instruction])

        case let .knownGap(gap):
            return (.notSatisfied, [gap])
        }
    }

    static func describe(_ role: Role) -> String {
        ComplianceFacts.privilege(of: role).map { "role '\(role.name)' (privileged: \($0))" } ?? "role '\(role.name)'"
    }

    /// The idle timeout a role's holders get (the shorter of the role's and the cluster's;
    /// a role cannot lift the cluster's) and where it comes from.
    static func idleTimeout(of role: Role, cluster: Duration?) -> (Duration?, String) {
        guard case .after(let own)? = role.options.clientIdleTimeout else {
            return (cluster, "the cluster's client_idle_timeout")
        }
        guard let cluster, cluster < own else { return (own, "the role's client_idle_timeout") }
        return (cluster, "the cluster's client_idle_timeout")
    }

    /// With no roles, what the cluster's timeout gives any role that sets none.
    static func judgeCluster(_ cluster: Duration?, limit: Duration?) -> (verdict: ControlVerdict, reasons: [String]) {
        guard let cluster else {
            return (.notSatisfied, ["auth_service.session_control.client_idle_timeout is never: idle connections are never ended; set it\(limit.map { " to \(format($0)) or less" } ?? "")"])
        }
        if let limit, cluster > limit {
            return (.notSatisfied, ["auth_service.session_control.client_idle_timeout is \(format(cluster)), longer than \(format(limit)): set it to \(format(limit))"])
        }
        return (.satisfied, ["no roles yet; auth_service.session_control.client_idle_timeout is \(format(cluster)), which every role that sets none gets"])
    }
}
