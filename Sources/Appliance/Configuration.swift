import FIPSCrypto
import Foundation
import SSH

/// `/etc/portcullis/portcullis.yaml`, after validation. Defaults are the safe ones: FIPS on,
/// FedRAMP Moderate/High values for idle timeout (SC-10: 15 min) and certificate lifetime
/// (IA-11 at AAL2/AAL3: 12 h), lockout on failed logins, strict locking.
public struct Configuration: Sendable, Equatable {
    public var version = "v1"
    public var dataDir = "/var/lib/portcullis"
    public var log = Log()
    public var fips = FIPS()
    public var keyring = Keyring()
    public var storage = Storage()
    public var authService = AuthService()
    public var proxyService = ProxyService()
    public var sshService = SSHService()
    public var audit = Audit()
    public var compliance = Compliance()

    public init() {}

    public struct Audit: Sendable, Equatable {
        /// Where events are copied after they are durable in the store (`<data_dir>/audit.db`).
        public enum Sink: Sendable, Equatable {
            /// JSON lines appended to a file (mode 600).
            case file(path: String)
            case stdout
            /// RFC 5424 to a local socket (`/dev/log`) or `udp://IPv4:port`.
            case syslog(address: String, facility: SyslogFacility)
            /// USER_LOGIN / USER_END / USER_ERR records through libaudit.
            case linuxAudit
        }

        public enum SyslogFacility: String, Sendable, CaseIterable {
            case auth, authpriv, daemon, local0, local1, local2, local3, local4, local5, local6, local7

            public var code: Int {
                switch self {
                case .auth: 4
                case .authpriv: 10
                case .daemon: 3
                case .local0: 16
                case .local1: 17
                case .local2: 18
                case .local3: 19
                case .local4: 20
                case .local5: 21
                case .local6: 22
                case .local7: 23
                }
            }
        }

        public var sinks: [Sink] = [.linuxAudit]
    }

    public struct Compliance: Sendable, Equatable {
        /// Values for the control parameters FedRAMP leaves to the provider ("CSP-defined"),
        /// by OSCAL parameter id (`ac-7_odp.01`); the compliance reports show them.
        public var parameters: [String: String] = [:]
    }

    public struct Log: Sendable, Equatable {
        public enum Format: String, Sendable, CaseIterable { case text, json }
        public enum Severity: String, Sendable, CaseIterable { case trace, debug, info, warning, error }
        public var severity = Severity.info
        public var format = Format.text
    }

    public struct FIPS: Sendable, Equatable {
        public var enabled = true
        public var opensslConfig = "/usr/lib/portcullis/fips/ssl/openssl.cnf"
        public var modulesDir = "/usr/lib/portcullis/fips/lib/ossl-modules"

        public var cryptoMode: CryptoMode {
            enabled ? .fips(FIPSProviderConfiguration(opensslConfig: opensslConfig, modulesDirectory: modulesDir)) : .nonFIPS
        }
    }

    public struct Keyring: Sendable, Equatable {
        /// Used when the systemd credential `portcullis-kek` is absent.
        public var kekFile: String? = "/etc/portcullis/kek"
    }

    public struct Storage: Sendable, Equatable {
        public enum Kind: String, Sendable, CaseIterable { case sqlite }
        public var type = Kind.sqlite
        /// Empty: `<data_dir>/backend.db`.
        public var path = ""
    }

    public struct AuthService: Sendable, Equatable {
        public var enabled = true
        public var listenAddr = ListenAddress(host: "127.0.0.1", port: 3025)
        public var clusterName = "portcullis"
        public var maxSessionTTL: Duration = .seconds(12 * 3600)
        public var authentication = Authentication()
        public var sessionControl = SessionControl()
        /// AC-8: shown by `pcsh login`, which must be acknowledged before a certificate is issued.
        public var messageOfTheDay = ""
        /// How long a new user's (or a reset's) invitation stays valid.
        public var inviteTTL: Duration = .seconds(24 * 3600)
        /// The CAs' key type, used when they are made and when they rotate.
        public var caKeyType = CAKeyType.ecdsaP384
    }

    public enum CAKeyType: String, Sendable, CaseIterable {
        case ecdsaP384 = "ecdsa-p384"
        case ecdsaP256 = "ecdsa-p256"
    }

    public struct Authentication: Sendable, Equatable {
        public enum SecondFactor: String, Sendable, CaseIterable { case otp }
        public var secondFactor = SecondFactor.otp
        /// AC-7: consecutive failures within `failedLoginWindow` that lock the account.
        /// The former FedRAMP Moderate values (Rev5 leaves them to the operator): 3 in 15 minutes, 30-minute lock.
        public var maxFailedLogins = 3
        public var failedLoginWindow: Duration = .seconds(15 * 60)
        public var lockoutDuration: Duration = .seconds(30 * 60)
    }

    public struct SessionControl: Sendable, Equatable {
        public enum LockingMode: String, Sendable, CaseIterable {
            case strict
            case bestEffort = "best_effort"
        }
        /// Nil: never (`never` in the file).
        public var clientIdleTimeout: Duration? = .seconds(15 * 60)
        public var clientIdleTimeoutMessage = ""
        public var disconnectExpiredCert = true
        public var sessionControlTimeout: Duration = .seconds(120)
        public var keepAliveInterval: Duration = .seconds(300)
        public var keepAliveCountMax = 3
        public var lockingMode = LockingMode.strict
    }

    public struct ProxyService: Sendable, Equatable {
        public var enabled = true
        public var listenAddr = ListenAddress(host: "0.0.0.0", port: 3023)
        public var webListenAddr = ListenAddress(host: "0.0.0.0", port: 3080)
        /// Host[:port] users connect to, if it differs from the listen address.
        public var publicAddr = ""
        /// The HTTPS certificate chain and key (PEM); both empty: a self-signed certificate
        /// made at first start and kept sealed.
        public var httpsCertFile = ""
        public var httpsKeyFile = ""
        /// The web console's idle sign-out (AC-11/AC-12, SC-10; FedRAMP's 15 minutes at most).
        public var webIdleTimeout: Duration = .seconds(600)

        /// The host of `publicAddr` (nil when it is empty).
        public var publicHost: String? { publicAddr.isEmpty ? nil : Self.host(ofPublicAddress: publicAddr) }

        /// `host`, `host:port` or `[v6]:port` → the host; nil when it is none of these.
        static func host(ofPublicAddress text: String) -> String? {
            if let address = ListenAddress(parsing: text) { return address.host }
            return ClusterHostNames.isHostName(text) ? text : nil
        }
    }

    public struct SSHService: Sendable, Equatable {
        public var enabled = true
        public var listenAddr = ListenAddress(host: "0.0.0.0", port: 3022)
        public var labels: [String: String] = [:]
        /// What roles, events and recordings call this node; empty: the host name.
        public var nodeName = ""
        /// Where the proxy reaches this node (`host:port`); empty: the listen address.
        public var publicAddr = ""
        /// The root broker's socket (`portcullis-privd`), through which an unprivileged daemon
        /// starts sessions; empty: the node starts them itself (it must then run as root).
        public var brokerSocket = ""
        public var pam = PAM()
        /// sshd's `PermitRootLogin`: the host may refuse `root` whatever the roles say.
        public var permitRootLogin = false
        public var enhancedRecording = EnhancedRecording()

        /// `ssh_service.enhanced_recording`: BPF records the programs sessions run and the TCP
        /// connections they open (roles' `enhanced_recording` say which).
        public struct EnhancedRecording: Sendable, Equatable {
            public var enabled = false
            /// The kernel's ring buffer, bytes (a power of two, at least 4096).
            public var ringBufferSize = 4 * 1024 * 1024
            public var failedExecs = false
            /// `strict`: a session that lost events ends; `best_effort`: the loss is recorded.
            public var strictOnLoss = false
        }

        /// `ssh_service.pam`: sessions opened through the host's PAM stack.
        public struct PAM: Sendable, Equatable {
            public var enabled = false
            public var serviceName = "portcullis"
            /// Put into every PAM session's environment (`pam_putenv`).
            public var environment: [String: String] = [:]
        }
    }

    /// The backend database file.
    public var storagePath: String {
        storage.path.isEmpty ? (dataDir as NSString).appendingPathComponent("backend.db") : storage.path
    }
}
