import Identity

/// What the control catalog's checks are evaluated over: the settings that decide whether a
/// control is met, taken from the live configuration and roles by the caller. A value, not the
/// configuration itself, because `Compliance` sits below `Appliance` (which owns
/// `Configuration`) and so the checks can be tested on facts built for the purpose.
///
/// Where each comes from in `/etc/portcullis/portcullis.yaml`:
///
/// | fact | setting |
/// | --- | --- |
/// | `fipsEnabled` | `fips.enabled` |
/// | `clusterIdleTimeout` | `auth_service.session_control.client_idle_timeout` (nil: `never`) |
/// | `disconnectExpiredCert` | `auth_service.session_control.disconnect_expired_cert` |
/// | `maxFailedLogins`, `failedLoginWindow`, `lockoutDuration` | `auth_service.authentication.*` |
/// | `messageOfTheDaySet` | `auth_service.message_of_the_day` is not empty |
/// | `maxSessionTTL` | `auth_service.max_session_ttl` (the cluster's cap on certificates) |
/// | `lockingMode` | `auth_service.session_control.locking_mode` |
/// | `auditRetention` | how long audit records are kept (nil: for ever; nothing deletes them today) |
/// | `roles` | every stored role (`pcctl get roles`) |
public struct ComplianceFacts: Sendable, Equatable {
    public var fipsEnabled: Bool
    /// nil: connections are never ended for being idle (unless a role sets a timeout).
    public var clusterIdleTimeout: Duration?
    public var disconnectExpiredCert: Bool
    public var maxFailedLogins: Int
    public var failedLoginWindow: Duration
    public var lockoutDuration: Duration
    public var messageOfTheDaySet: Bool
    public var maxSessionTTL: Duration
    public var lockingMode: RoleOptions.LockingMode
    /// nil: kept for ever.
    public var auditRetention: Duration?
    public var roles: [Role]

    public init(fipsEnabled: Bool, clusterIdleTimeout: Duration?, disconnectExpiredCert: Bool, maxFailedLogins: Int,
                failedLoginWindow: Duration, lockoutDuration: Duration, messageOfTheDaySet: Bool, maxSessionTTL: Duration,
                lockingMode: RoleOptions.LockingMode, auditRetention: Duration? = nil, roles: [Role] = []) {
        self.fipsEnabled = fipsEnabled
        self.clusterIdleTimeout = clusterIdleTimeout
        self.disconnectExpiredCert = disconnectExpiredCert
        self.maxFailedLogins = maxFailedLogins
        self.failedLoginWindow = failedLoginWindow
        self.lockoutDuration = lockoutDuration
        self.messageOfTheDaySet = messageOfTheDaySet
        self.maxSessionTTL = maxSessionTTL
        self.lockingMode = lockingMode
        self.auditRetention = auditRetention
        self.roles = roles
    }

    /// Why `role` gives privileged access, or nil when it does not (`Role.isPrivileged`, the one
    /// definition AC-10's report uses too): it grants login `root`, or sudoers lines on the host.
    /// The FedRAMP values for AC-10 and SC-10 differ for privileged and non-privileged access.
    static func privilege(of role: Role) -> String? {
        guard role.isPrivileged else { return nil }
        return role.grantedLogins.contains("root") ? "grants login root" : "grants host_sudoers"
    }
}
