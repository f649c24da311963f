import Identity
import YAMLNodes

/// The closed set of automated checks a control file may name (`rule:`), each evaluated over
/// `ComplianceFacts`. A rule the catalog does not know is a load error, never a silent pass.
///
/// Each answer says why, in words an operator can act on: which role or setting, its value, the
/// value required, and what to set.
public enum ControlRule: Sendable, Equatable {
    /// `fips_enabled`: `fips.enabled` is on.
    case fipsEnabled
    /// `roles_max_connections_at_most: {privileged: 3, non_privileged: 2}`: every role limits
    /// concurrent connections per user (`max_connections`, counted across the cluster) to its class's value.
    case rolesMaxConnectionsAtMost(privileged: Int, nonPrivileged: Int)
    /// `idle_timeout_at_most: {privileged: 10m, non_privileged: 15m}`: every role's holders are
    /// disconnected after at most this long idle (the role's timeout or the cluster's, the shorter).
    case idleTimeoutAtMost(privileged: Duration, nonPrivileged: Duration)
    /// `idle_timeout_set`: no role's holders stay connected for ever while idle.
    case idleTimeoutSet
    /// `certificate_lifetime_at_most: 12h`: no certificate a login earns lives longer.
    case certificateLifetimeAtMost(Duration)
    /// `disconnect_expired_cert`: connections end when their certificate expires, for every role.
    case disconnectExpiredCert
    /// `audit_retention_at_least: 90d`: audit records are kept at least this long.
    case auditRetentionAtLeast(Duration)
    /// `banner_set`: `auth_service.message_of_the_day` is set.
    case bannerSet
    /// `lockout_configured`: failed logins lock the name (at most 100 attempts, SP 800-63B).
    case lockoutConfigured
    /// `locking_mode_strict`: every role's connections end when the lock list cannot be kept current.
    case lockingModeStrict
    /// `privileged_recording_strict`: privileged roles refuse or end sessions that cannot be recorded.
    case privilegedRecordingStrict
    /// `manual: "what to check"`: a person must check it; the answer is always `manual`.
    case manual(String)
    /// `known_gap: "what is missing"`: Portcullis does not do it; the answer is always `not_satisfied`.
    case knownGap(String)

    /// Every rule name, as the files spell them.
    public static let names = ["fips_enabled", "roles_max_connections_at_most", "idle_timeout_at_most", "idle_timeout_set",
                               "certificate_lifetime_at_most", "disconnect_expired_cert", "audit_retention_at_least", "banner_set",
                               "lockout_configured", "locking_mode_strict", "privileged_recording_strict", "manual", "known_gap"]

    /// The rules written as a bare name.
    static let withoutSettings: [String: ControlRule] = Dictionary(uniqueKeysWithValues: [
        ControlRule.fipsEnabled, .idleTimeoutSet, .disconnectExpiredCert, .bannerSet, .lockoutConfigured, .lockingModeStrict,
        .privilegedRecordingStrict,
    ].map { ($0.name, $0) })

    public var name: String {
        switch self {
        case .fipsEnabled: "fips_enabled"
        case .rolesMaxConnectionsAtMost: "roles_max_connections_at_most"
        case .idleTimeoutAtMost: "idle_timeout_at_most"
        case .idleTimeoutSet: "idle_timeout_set"
        case .certificateLifetimeAtMost: "certificate_lifetime_at_most"
        case .disconnectExpiredCert: "disconnect_expired_cert"
        case .auditRetentionAtLeast: "audit_retention_at_least"
        case .bannerSet: "banner_set"
        case .lockoutConfigured: "lockout_configured"
        case .lockingModeStrict: "locking_mode_strict"
        case .privilegedRecordingStrict: "privileged_recording_strict"
        case .manual: "manual"
        case .knownGap: "known_gap"
        }
    }

    /// The rule as a file writes it (for the rendered catalog).
    public var source: String {
        switch self {
        case let .rolesMaxConnectionsAtMost(privileged, nonPrivileged): "\(name): {privileged: \(privileged), non_privileged: \(nonPrivileged)}"
        case let .idleTimeoutAtMost(privileged, nonPrivileged):
            "\(name): {privileged: \(Self.format(privileged)), non_privileged: \(Self.format(nonPrivileged))}"
        case let .certificateLifetimeAtMost(limit), let .auditRetentionAtLeast(limit): "\(name): \(Self.format(limit))"
        default: name
        }
    }

    /// `90d`, `12h`, `10m`: days where the duration is whole days, else `NodeReader`'s form.
    public static func format(_ duration: Duration) -> String {
        let seconds = duration.components.seconds
        if seconds >= 86400, seconds % 86400 == 0, duration.components.attoseconds == 0 { return "\(seconds / 86400)d" }
        return NodeReader.format(duration)
    }

    /// `NodeReader`'s durations, and whole days (`90d`), which retention needs.
    public static func parseDuration(_ text: String) -> Duration? {
        if text.hasSuffix("d") {
            let digits = text.dropLast()
            guard !digits.isEmpty, digits.count <= 6, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let days = Int64(digits) else { return nil }
            return .seconds(days * 86400)
        }
        return NodeReader.parseDuration(text)
    }
}
