import Foundation
import Identity
import SessionControl

/// What the node is told by the configuration: where it listens, who it is, and the cluster's
/// session controls (roles may tighten them).
public struct NodeSettings: Sendable {
    public var host: String
    public var port: Int
    /// The node's name: what roles, recordings and events call it (the host name by default).
    public var nodeName: String
    public var labels: [String: String]
    public var clusterName: String
    /// The cluster's idle timeout (nil: never); the shortest of it and the roles' applies.
    public var clientIdleTimeout: Duration?
    /// Written to the client before an idle disconnect; empty: the reason is written.
    public var clientIdleTimeoutMessage: String
    /// The cluster's `disconnect_expired_cert` (a role can turn it on, not off).
    public var disconnectExpiredCert: Bool
    public var keepaliveInterval: Duration
    public var keepaliveCountMax: Int
    /// Shown before authentication (AC-8); nil for none.
    public var banner: String?
    /// `portcullis-exec`, the privilege-separated session launcher.
    public var launcherPath: String
    /// The root broker's socket (`portcullis-privd`): sessions are started by it, and the daemon
    /// needs no privilege. nil: the node starts them itself (as root, or a developer's own login).
    public var brokerSocket: String?
    /// sshd's `PermitRootLogin`: whether a role may grant a login with uid 0 here.
    public var permitRootLogin: Bool
    /// Sessions through the host's PAM stack: the service and the variables put into each.
    public var pam: PAMSettings?

    public struct PAMSettings: Sendable, Equatable {
        public var serviceName: String
        public var environment: [String: String]
        public init(serviceName: String = "portcullis", environment: [String: String] = [:]) {
            self.serviceName = serviceName
            self.environment = environment
        }
    }
    /// Enhanced recording (BPF): the programs sessions run and the connections they open, for
    /// roles whose `enhanced_recording` asks; nil: off, and the node never touches BPF.
    public var enhancedRecording: EnhancedRecordingSettings?

    public struct EnhancedRecordingSettings: Sendable, Equatable {
        /// The kernel's ring buffer (a power of two, at least 4096; used when the node loads the
        /// programs itself, else the broker's `--ring-buffer-size` applies).
        public var ringBufferBytes: Int
        /// Failed execs too (the syscall tracepoints slow every syscall on the host).
        public var failedExecs: Bool
        /// What a session whose events were lost becomes: recorded as lost (`bestEffort`), or ended (`strict`).
        public var onLoss: LossPolicy

        public enum LossPolicy: String, Sendable, CaseIterable { case bestEffort = "best_effort", strict }

        public init(ringBufferBytes: Int = 4 * 1024 * 1024, failedExecs: Bool = false, onLoss: LossPolicy = .bestEffort) {
            self.ringBufferBytes = ringBufferBytes
            self.failedExecs = failedExecs
            self.onLoss = onLoss
        }
    }

    /// How often drop-mode host users left behind are looked for (and at start).
    public var hostUserSweepInterval: Duration = .seconds(300)
    /// Where session recordings are written (the audit issue's layout).
    public var recordingsRoot: String
    /// The sftp subsystem's program, run as the login through the launcher.
    public var sftpServer: String
    /// How long a node host certificate is valid; it is renewed at half-life.
    public var hostCertificateTTL: Duration
    /// A `max_connections` lease lasts this long after its last renewal (renewed at half-life).
    public var sessionControlTimeout: Duration
    /// The cluster's locking mode (a role's `lock: strict` wins).
    public var lockingMode: RoleOptions.LockingMode
    /// Where the proxy reaches this node (`host:port`); nil: the listen address, or loopback
    /// when it listens on every address (a proxy in the same appliance).
    public var publicAddress: String?

    public init(host: String = "0.0.0.0", port: Int = 3022, nodeName: String = HostIdentity.hostName, labels: [String: String] = [:],
                clusterName: String, clientIdleTimeout: Duration? = .seconds(15 * 60), clientIdleTimeoutMessage: String = "",
                disconnectExpiredCert: Bool = true, keepaliveInterval: Duration = .seconds(300), keepaliveCountMax: Int = 3,
                banner: String? = nil, launcherPath: String = NodeSettings.defaultLauncherPath, brokerSocket: String? = nil, permitRootLogin: Bool = false, pam: PAMSettings? = nil,
                enhancedRecording: EnhancedRecordingSettings? = nil,
                recordingsRoot: String,
                sftpServer: String = "/usr/lib/openssh/sftp-server", hostCertificateTTL: Duration = .seconds(7 * 24 * 3600),
                sessionControlTimeout: Duration = .seconds(120), lockingMode: RoleOptions.LockingMode = .strict,
                publicAddress: String? = nil) {
        self.host = host
        self.port = port
        self.nodeName = nodeName
        self.labels = labels
        self.clusterName = clusterName
        self.clientIdleTimeout = clientIdleTimeout
        self.clientIdleTimeoutMessage = clientIdleTimeoutMessage
        self.disconnectExpiredCert = disconnectExpiredCert
        self.keepaliveInterval = keepaliveInterval
        self.keepaliveCountMax = keepaliveCountMax
        self.banner = banner
        self.launcherPath = launcherPath
        self.brokerSocket = brokerSocket
        self.permitRootLogin = permitRootLogin
        self.pam = pam
        self.enhancedRecording = enhancedRecording
        self.recordingsRoot = recordingsRoot
        self.sftpServer = sftpServer
        self.hostCertificateTTL = hostCertificateTTL
        self.sessionControlTimeout = sessionControlTimeout
        self.lockingMode = lockingMode
        self.publicAddress = publicAddress
    }

    /// Beside the running program (a build tree), else where the package installs it.
    public static var defaultLauncherPath: String {
        let beside = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().path + "/portcullis-exec"
        return FileManager.default.isExecutableFile(atPath: beside) ? beside : "/usr/lib/portcullis/portcullis-exec"
    }
}

extension NodeSettings {
    /// The cluster's session-control defaults, as admission applies them.
    public var sessionPolicy: SessionPolicy {
        SessionPolicy(clientIdleTimeout: clientIdleTimeout, clientIdleTimeoutMessage: clientIdleTimeoutMessage,
                      disconnectExpiredCert: disconnectExpiredCert, lockingMode: lockingMode)
    }
}
