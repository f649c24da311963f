/// The commented configuration `portcullis configure` writes. With default parameters it parses
/// to exactly `Configuration()` (a test holds the two together).
public enum DefaultConfiguration {
    public struct Parameters: Sendable {
        public var dataDir = "/var/lib/portcullis"
        public var fipsEnabled = true
        public var opensslConfig = "/usr/lib/portcullis/fips/ssl/openssl.cnf"
        public var modulesDir = "/usr/lib/portcullis/fips/lib/ossl-modules"
        public var kekFile = "/etc/portcullis/kek"
        /// `ssh_service.broker_socket`; empty: none.
        public var brokerSocket = ""
        /// `ssh_service.pam.enabled`.
        public var pamEnabled = false

        public init() {}

        /// Point both FIPS settings into a prefix written by packaging/fips/build-fips-provider.sh.
        public mutating func useFIPSPrefix(_ prefix: String) {
            let trimmed = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
            opensslConfig = "\(trimmed)/ssl/openssl.cnf"
            modulesDir = "\(trimmed)/lib/ossl-modules"
        }
    }

    public static func render(_ p: Parameters = Parameters()) -> String {
        """
        # Portcullis configuration (/etc/portcullis/portcullis.yaml).
        # Unknown keys and wrong types are errors, reported with line and column.
        # Check a change with: portcullis selftest --config <file>
        version: v1

        # Everything Portcullis stores lives here, sealed with AES-256-GCM. Must be mode 0700.
        data_dir: \(p.dataDir)

        log:
          severity: info          # trace, debug, info, warning, error
          format: text            # text, or json for log pipelines

        fips:
          # FIPS mode: all cryptography through the OpenSSL FIPS provider; non-approved
          # algorithms (MD5, Ed25519, X25519, ChaCha20) are refused. Turning it off is reported
          # at every start and in every compliance report.
          enabled: \(p.fipsEnabled ? "yes" : "no")
          # The OpenSSL configuration that declares the fips provider (module MAC, self-test
          # settings) and the directory that holds fips.so. Point both at your CMVP-validated
          # module; packaging/fips/build-fips-provider.sh builds a (non-validated) one from the
          # distribution's OpenSSL source.
          openssl_config: \(p.opensslConfig)
          modules_dir: \(p.modulesDir)

        keyring:
          # The key-encryption key wraps every data key. Preferred: the systemd credential
          # 'portcullis-kek' (LoadCredentialEncrypted=; pcctl run as root decrypts
          # /etc/credstore.encrypted/portcullis-kek itself). Otherwise this file: 32 bytes (raw,
          # hex or base64), owned by the daemon's user, mode 0600. Empty: the credential only.
          kek_file: \(p.kekFile.isEmpty ? "\"\"" : p.kekFile)

        storage:
          type: sqlite            # embedded SQLite (WAL)
          path: ""                # empty: <data_dir>/backend.db

        auth_service:
          enabled: yes
          listen_addr: 127.0.0.1:3025
          cluster_name: portcullis
          # Longest certificate a login can get (IA-11: 12h at AAL2/AAL3).
          max_session_ttl: 12h
          # AC-8: the system use notice 'pcsh login' shows and the user must acknowledge.
          message_of_the_day: ""
          # How long an invitation from 'pcctl users add' or 'pcctl users reset' stays valid.
          invite_ttl: 24h
          # Key type of the user and host CAs (ecdsa-p384 or ecdsa-p256), used when they are
          # first made and at each rotation ('pcctl auth rotate').
          ca_key_type: ecdsa-p384
          authentication:
            second_factor: otp
            # AC-7: lock an account after this many consecutive failed logins within the window
            # (FedRAMP Rev5 leaves the numbers to you, in line with SP 800-63B; these are the
            # former FedRAMP Moderate values).
            max_failed_logins: 3
            failed_login_window: 15m
            lockout_duration: 30m
          session_control:
            # SC-10/AC-12: disconnect idle sessions (FedRAMP M/H: 15m for users, 10m privileged).
            client_idle_timeout: 15m
            client_idle_timeout_message: ""
            # AC-12: end sessions when the user's certificate expires.
            disconnect_expired_cert: yes
            # Lease lifetime of max_connections semaphores: how long a node may lose the auth
            # service before its limited sessions are ended.
            session_control_timeout: 2m
            keep_alive_interval: 5m
            keep_alive_count_max: 3
            # strict: deny and disconnect when the lock list cannot be kept current;
            # best_effort: keep using the last known locks.
            locking_mode: strict

        proxy_service:
          enabled: yes
          listen_addr: 0.0.0.0:3023       # SSH
          web_listen_addr: 0.0.0.0:3080   # HTTPS: login API and the web console
          public_addr: ""
          # PEM certificate chain and key for HTTPS; leave both empty for a self-signed
          # certificate made at first start ('pcctl auth export --type tls' prints it for pcsh).
          https_cert_file: ""
          https_key_file: ""
          # The web console (https://HOST:3080/web) signs a browser out after this long idle.
          web_idle_timeout: 10m

        ssh_service:
          # The node: the SSH server people work on. Every session is started by the launcher
          # (portcullis-exec) as the login's user, in its own cgroup: through the root broker
          # (portcullis-privd) when broker_socket is set, so this daemon needs no privilege
          # (the installed appliance: /run/portcullis-privd/privd.sock); else by this daemon,
          # which must then run as root.
          enabled: yes
          listen_addr: 0.0.0.0:3022
          node_name: ""                   # empty: the host name; roles' node_labels match 'labels'
          public_addr: ""                 # where the proxy reaches this node; empty: the listen address
          labels: {}
          broker_socket: "\(p.brokerSocket)"
          # sshd's PermitRootLogin: 'yes' lets roles grant the login root on this node.
          permit_root_login: no
          # Sessions through the host's PAM stack (account and session: pam_access, pam_limits,
          # pam_env, pam_loginuid, pam_systemd, ...), as sshd's UsePAM; the package ships
          # /etc/pam.d/portcullis. environment: variables put into every PAM session.
          pam:
            enabled: \(p.pamEnabled ? "yes" : "no")
            service_name: portcullis
            environment: {}
          # Enhanced recording (BPF): the programs sessions run and the TCP connections they
          # open, as session.command / session.network events and in the recordings, for roles
          # whose enhanced_recording asks (default: command, network). Needs root, or the broker
          # started with --enhanced-recording (its --ring-buffer-size and --failed-execs apply then).
          # failed_execs slows every syscall on the host; on_loss: strict ends a session whose
          # events were lost (best_effort records the loss).
          enhanced_recording:
            enabled: no
            ring_buffer_size: 4194304
            failed_execs: no
            on_loss: best_effort

        audit:
          # Every event is kept in <data_dir>/audit.db (sealed, hash-chained, signed checkpoints;
          # 'pcctl audit verify'). Sinks get a copy; a failing sink never loses the store's.
          #   - type: file            JSON lines for a SIEM shipper
          #     path: /var/log/portcullis/audit.jsonl
          #   - type: stdout
          #   - type: syslog          RFC 5424
          #     address: /dev/log     or udp://10.0.0.5:514
          #     facility: authpriv    auth, authpriv, daemon, local0..local7
          #   - type: linux_audit     USER_LOGIN/USER_END/USER_ERR, as sshd (ausearch -m USER_LOGIN)
          sinks:
            - type: linux_audit

        # Values for the control parameters FedRAMP leaves to the provider ("CSP-defined" in
        # compliance/controls.md), by parameter id; 'pcctl report fedramp' and the OSCAL forms
        # show them. A value FedRAMP sets cannot be changed here.
        #compliance:
        #  parameters:
        #    ac-07_odp.01: "3"
        #    ac-07_odp.02: 15 minutes

        """
    }
}
