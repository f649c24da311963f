import Compliance
import Foundation
import LaunchProtocol
import SSH
import YAMLNodes

/// Reads portcullis.yaml into a `Configuration`. Hand-written over the YAML node tree rather than
/// `Codable` because decoding loses positions, and every mistake here must be reported with
/// file, line and column (and the nearest valid key for a typo).
public enum ConfigurationLoader {
    /// What `ssh_service.pam.environment` may hold in all: a quarter of a launch request.
    static let pamEnvironmentLimit = LaunchSpec.lineLimit / 4
    public static let defaultPath = "/etc/portcullis/portcullis.yaml"

    public static func load(path: String) throws -> Configuration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(file: path, message: "cannot read the file (\(String(cString: strerror(errno)))); "
                                     + "write a commented default with 'portcullis configure --output \(path)'")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(file: path, message: "the file is not UTF-8 text")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws -> Configuration {
        let documents: [Node]
        do {
            documents = try YAMLComposer.documents(text)
        } catch {
            throw ConfigurationError(syntax: error, file: file)
        }
        guard let root = try NodeReader(file: file).single(documents, what: "configuration") else { throw ConfigurationError(file: file, message: "the file is empty; expected at least 'version: v1'") }
        let reader = NodeReader(file: file)
        var configuration = Configuration()
        let top = try reader.mapping(root, path: "", keys: [
            "version", "data_dir", "log", "fips", "keyring", "storage", "auth_service", "proxy_service", "ssh_service", "audit",
            "compliance",
        ])
        guard let version = top["version"] else {
            throw ConfigurationError(file: file, line: root.mark?.line, column: root.mark?.column,
                                     message: "missing 'version: v1' at the top level")
        }
        configuration.version = try reader.choice(version, path: "version", from: ["v1"])
        if let node = top["data_dir"] { configuration.dataDir = try reader.absolutePath(node, path: "data_dir") }

        if let node = top["log"] {
            let log = try reader.mapping(node, path: "log", keys: ["severity", "format"])
            if let n = log["severity"] { configuration.log.severity = try reader.enumeration(n, path: "log.severity") }
            if let n = log["format"] { configuration.log.format = try reader.enumeration(n, path: "log.format") }
        }
        if let node = top["fips"] {
            let fips = try reader.mapping(node, path: "fips", keys: ["enabled", "openssl_config", "modules_dir"])
            if let n = fips["enabled"] { configuration.fips.enabled = try reader.bool(n, path: "fips.enabled") }
            if let n = fips["openssl_config"] { configuration.fips.opensslConfig = try reader.absolutePath(n, path: "fips.openssl_config") }
            if let n = fips["modules_dir"] { configuration.fips.modulesDir = try reader.absolutePath(n, path: "fips.modules_dir") }
        }
        if let node = top["keyring"] {
            let keyring = try reader.mapping(node, path: "keyring", keys: ["kek_file"])
            if let n = keyring["kek_file"] {
                let value = try reader.string(n, path: "keyring.kek_file")
                configuration.keyring.kekFile = value.isEmpty ? nil : try reader.absolutePath(n, path: "keyring.kek_file")
            }
        }
        if let node = top["storage"] {
            let storage = try reader.mapping(node, path: "storage", keys: ["type", "path"])
            if let n = storage["type"] { configuration.storage.type = try reader.enumeration(n, path: "storage.type") }
            if let n = storage["path"] {
                configuration.storage.path = try reader.string(n, path: "storage.path").isEmpty ? "" : try reader.absolutePath(n, path: "storage.path")
            }
        }
        if let node = top["auth_service"] { try readAuth(node, reader, &configuration.authService) }
        if let node = top["proxy_service"] {
            let proxy = try reader.mapping(node, path: "proxy_service", keys: ["enabled", "listen_addr", "web_listen_addr", "public_addr", "https_cert_file", "https_key_file", "web_idle_timeout"])
            if let n = proxy["enabled"] { configuration.proxyService.enabled = try reader.bool(n, path: "proxy_service.enabled") }
            if let n = proxy["listen_addr"] { configuration.proxyService.listenAddr = try reader.address(n, path: "proxy_service.listen_addr") }
            if let n = proxy["web_listen_addr"] { configuration.proxyService.webListenAddr = try reader.address(n, path: "proxy_service.web_listen_addr") }
            if let n = proxy["public_addr"] {
                let text = try reader.string(n, path: "proxy_service.public_addr")
                guard text.isEmpty || Configuration.ProxyService.host(ofPublicAddress: text) != nil else {
                    throw reader.error(n, "'proxy_service.public_addr' must be host or host:port (e.g. proxy.example.com:3080, [2001:db8::1]:3080), not \"\(text.prefix(64))\"")
                }
                configuration.proxyService.publicAddr = text
            }
            if let n = proxy["https_cert_file"] { configuration.proxyService.httpsCertFile = try reader.string(n, path: "proxy_service.https_cert_file") }
            if let n = proxy["https_key_file"] { configuration.proxyService.httpsKeyFile = try reader.string(n, path: "proxy_service.https_key_file") }
            if let n = proxy["web_idle_timeout"] {
                configuration.proxyService.webIdleTimeout = try reader.duration(n, path: "proxy_service.web_idle_timeout", within: .seconds(5)...(.seconds(3600)))
            }
            if configuration.proxyService.httpsCertFile.isEmpty != configuration.proxyService.httpsKeyFile.isEmpty {
                throw reader.error(node, "'proxy_service.https_cert_file' and 'https_key_file' go together: set both, or neither for a self-signed certificate")
            }
        }
        if let node = top["ssh_service"] {
            let ssh = try reader.mapping(node, path: "ssh_service", keys: ["enabled", "listen_addr", "labels", "node_name", "public_addr", "broker_socket", "pam",
                                                                                "permit_root_login", "enhanced_recording"])
            if let n = ssh["enabled"] { configuration.sshService.enabled = try reader.bool(n, path: "ssh_service.enabled") }
            if let n = ssh["listen_addr"] { configuration.sshService.listenAddr = try reader.address(n, path: "ssh_service.listen_addr") }
            if let n = ssh["labels"] { configuration.sshService.labels = try reader.labels(n, path: "ssh_service.labels") }
            if let n = ssh["node_name"] {
                let name = try reader.string(n, path: "ssh_service.node_name")
                guard name.isEmpty || ClusterHostNames.isHostName(name) else {
                    throw ConfigurationError(file: file, line: n.mark?.line, column: n.mark?.column,
                                             message: "'ssh_service.node_name' must be a host name (letters, digits, '.', '-', '_'), not \"\(name.prefix(64))\"")
                }
                let clusterSuffix = "." + configuration.authService.clusterName.lowercased()
                guard !name.lowercased().hasSuffix(clusterSuffix) else {
                    throw ConfigurationError(file: file, line: n.mark?.line, column: n.mark?.column,
                                             message: "'ssh_service.node_name' \"\(name.prefix(64))\" ends in the cluster's name: it would be taken for node \"\(name.dropLast(clusterSuffix.count))\" of cluster \"\(configuration.authService.clusterName)\"")
                }
                configuration.sshService.nodeName = name
            }
            if let n = ssh["public_addr"] {
                let text = try reader.string(n, path: "ssh_service.public_addr")
                guard text.isEmpty || ListenAddress(parsing: text) != nil else {
                    throw ConfigurationError(file: file, line: n.mark?.line, column: n.mark?.column,
                                             message: "'ssh_service.public_addr' must be host:port (e.g. web1.example.com:3022), not \"\(text.prefix(64))\"")
                }
                configuration.sshService.publicAddr = text
            }
            if let n = ssh["broker_socket"] {
                let path = try reader.string(n, path: "ssh_service.broker_socket")
                guard path.isEmpty || (path.hasPrefix("/") && path.utf8.count < 108) else {
                    throw ConfigurationError(file: file, line: n.mark?.line, column: n.mark?.column,
                                             message: "'ssh_service.broker_socket' must be an absolute path of a Unix socket (under 108 bytes), not \"\(path.prefix(64))\"")
                }
                configuration.sshService.brokerSocket = path
            }
            if let n = ssh["permit_root_login"] { configuration.sshService.permitRootLogin = try reader.bool(n, path: "ssh_service.permit_root_login") }
            if let n = ssh["pam"] {
                let pam = try reader.mapping(n, path: "ssh_service.pam", keys: ["enabled", "service_name", "environment"])
                if let e = pam["enabled"] { configuration.sshService.pam.enabled = try reader.bool(e, path: "ssh_service.pam.enabled") }
                if let e = pam["service_name"] {
                    let name = try reader.string(e, path: "ssh_service.pam.service_name")
                    guard BrokerRequest.isPAMService(name) else {
                        throw reader.error(e, "'ssh_service.pam.service_name' must name a file in /etc/pam.d (letters, digits, '.', '_', '-'), not \"\(name.prefix(64))\"")
                    }
                    configuration.sshService.pam.serviceName = name
                }
                if let e = pam["environment"] {
                    guard case .mapping(let mapping) = e, mapping.count <= SessionEnvironment.maximumCount else {
                        throw reader.error(e, "'ssh_service.pam.environment' must be a mapping of at most \(SessionEnvironment.maximumCount) variable names to values")
                    }
                    for (key, value) in mapping {
                        let name = try reader.string(key, path: "ssh_service.pam.environment key")
                        // PAM hooks (pam_exec) run as root with this environment.
                        guard SessionEnvironment.mayGoIntoPAM(name) else {
                            throw reader.error(key, "'ssh_service.pam.environment' cannot set '\(name.prefix(64))': a variable name, not PATH nor one of the account's or the loader's")
                        }
                        let text = try reader.string(value, path: "ssh_service.pam.environment.\(name)")
                        guard text.utf8.count <= SessionEnvironment.maximumValueBytes else {
                            throw reader.error(value, "'ssh_service.pam.environment.\(name)' is longer than \(SessionEnvironment.maximumValueBytes) bytes")
                        }
                        configuration.sshService.pam.environment[name] = text
                    }
                    // Every session's launch request carries them, within LaunchSpec.lineLimit.
                    let total = configuration.sshService.pam.environment.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
                    guard total <= Self.pamEnvironmentLimit else {
                        throw reader.error(e, "'ssh_service.pam.environment' holds \(total) bytes, more than \(Self.pamEnvironmentLimit): each session's launch request carries it")
                    }
                }
            }
        }
        if let node = top["ssh_service"], case .mapping(let ssh) = node, let enhanced = ssh["enhanced_recording"] {
            configuration.sshService.enhancedRecording = try readEnhancedRecording(enhanced, reader)
        }
        if let node = top["audit"] { configuration.audit = try readAudit(node, reader) }
        if let node = top["compliance"] { configuration.compliance = try readCompliance(node, reader) }
        try checkListeners(configuration, root: root, file: file)
        return configuration
    }

    /// `ssh_service.enhanced_recording`.
    static func readEnhancedRecording(_ node: Node, _ reader: NodeReader) throws -> Configuration.SSHService.EnhancedRecording {
        let path = "ssh_service.enhanced_recording"
        let map = try reader.mapping(node, path: path, keys: ["enabled", "ring_buffer_size", "failed_execs", "on_loss"])
        var settings = Configuration.SSHService.EnhancedRecording()
        if let n = map["enabled"] { settings.enabled = try reader.bool(n, path: "\(path).enabled") }
        if let n = map["ring_buffer_size"] {
            let size = try reader.integer(n, path: "\(path).ring_buffer_size", within: 4096...(1 << 30))
            guard size & (size - 1) == 0 else { throw reader.error(n, "'\(path).ring_buffer_size' must be a power of two (4096 … 1073741824), not \(size)") }
            settings.ringBufferSize = size
        }
        if let n = map["failed_execs"] { settings.failedExecs = try reader.bool(n, path: "\(path).failed_execs") }
        if let n = map["on_loss"] { settings.strictOnLoss = try reader.choice(n, path: "\(path).on_loss", from: ["best_effort", "strict"]) == "strict" }
        return settings
    }

    /// `compliance.parameters`: the ids must look like OSCAL parameter ids; whether the catalog
    /// has them is checked where the catalog is loaded (`pcctl report`).
    private static func readCompliance(_ node: Node, _ reader: NodeReader) throws -> Configuration.Compliance {
        var compliance = Configuration.Compliance()
        let map = try reader.mapping(node, path: "compliance", keys: ["parameters"])
        guard let parameters = map["parameters"] else { return compliance }
        guard case .mapping(let entries) = parameters else { throw reader.error(parameters, "'compliance.parameters' must be a mapping of parameter id to value") }
        for (key, value) in entries {
            let id = try reader.string(key, path: "compliance.parameters")
            guard Control.Parameter.isValidID(id) else {
                throw reader.error(key, "'compliance.parameters' key \"\(id.prefix(64))\" is not a parameter id as compliance/controls.md lists them, such as ac-07_odp.01")
            }
            let text = try reader.string(value, path: "compliance.parameters.\(id)")
            guard !text.trimmingCharacters(in: .whitespaces).isEmpty, text.count <= 1000, !text.contains(where: \.isNewline) else {
                throw reader.error(value, "'compliance.parameters.\(id)' must be one line of 1 to 1000 characters")
            }
            compliance.parameters[id] = text
        }
        return compliance
    }

    private static func readAudit(_ node: Node, _ reader: NodeReader) throws -> Configuration.Audit {
        var audit = Configuration.Audit()
        let map = try reader.mapping(node, path: "audit", keys: ["sinks"])
        guard let list = map["sinks"] else { return audit }
        audit.sinks = []
        for (index, item) in try reader.sequence(list, path: "audit.sinks").enumerated() {
            let path = "audit.sinks[\(index)]"
            guard case .mapping = item else { throw reader.error(item, "'\(path)' must be a mapping with 'type'") }
            let type = try reader.mapping(item, path: path, keys: ["type", "path", "address", "facility"])
            guard let typeNode = type["type"] else { throw reader.error(item, "'\(path)' needs a 'type' (file, stdout, syslog, linux_audit)") }
            let allowed: [String]
            let sink: Configuration.Audit.Sink
            switch try reader.choice(typeNode, path: "\(path).type", from: ["file", "stdout", "syslog", "linux_audit"]) {
            case "file":
                allowed = ["type", "path"]
                guard let pathNode = type["path"] else { throw reader.error(item, "'\(path)' (a file sink) needs 'path'") }
                sink = .file(path: try reader.absolutePath(pathNode, path: "\(path).path"))
            case "syslog":
                allowed = ["type", "address", "facility"]
                var address = "/dev/log"
                if let n = type["address"] {
                    address = try reader.string(n, path: "\(path).address")
                    if address.hasPrefix("udp://") {
                        guard let parsed = ListenAddress(parsing: String(address.dropFirst(6))),
                              parsed.host.split(separator: ".").count == 4 else {
                            throw reader.error(n, "'\(path).address' must be a socket path or udp://IPv4:port, got '\(address)'")
                        }
                    } else {
                        address = try reader.absolutePath(n, path: "\(path).address")
                    }
                }
                var facility = Configuration.Audit.SyslogFacility.authpriv
                if let n = type["facility"] { facility = try reader.enumeration(n, path: "\(path).facility") }
                sink = .syslog(address: address, facility: facility)
            case "stdout":
                allowed = ["type"]
                sink = .stdout
            default:
                allowed = ["type"]
                sink = .linuxAudit
            }
            if let extra = type.keys.sorted().first(where: { !allowed.contains($0) }) {
                throw reader.error(type[extra]!, "'\(path).\(extra)' does not apply to this sink type (it takes: \(allowed.joined(separator: ", ")))")
            }
            audit.sinks.append(sink)
        }
        return audit
    }

    private static func readAuth(_ node: Node, _ reader: NodeReader, _ auth: inout Configuration.AuthService) throws {
        let map = try reader.mapping(node, path: "auth_service", keys: [
            "enabled", "listen_addr", "cluster_name", "max_session_ttl", "authentication", "session_control", "message_of_the_day", "invite_ttl", "ca_key_type",
        ])
        if let n = map["ca_key_type"] { auth.caKeyType = try reader.enumeration(n, path: "auth_service.ca_key_type") }
        if let n = map["message_of_the_day"] { auth.messageOfTheDay = try reader.string(n, path: "auth_service.message_of_the_day") }
        if let n = map["invite_ttl"] { auth.inviteTTL = try reader.duration(n, path: "auth_service.invite_ttl", within: .seconds(300)...Duration.seconds(7 * 86400)) }
        if let n = map["enabled"] { auth.enabled = try reader.bool(n, path: "auth_service.enabled") }
        if let n = map["listen_addr"] { auth.listenAddr = try reader.address(n, path: "auth_service.listen_addr") }
        if let n = map["cluster_name"] { auth.clusterName = try reader.name(n, path: "auth_service.cluster_name") }
        if let n = map["max_session_ttl"] {
            auth.maxSessionTTL = try reader.duration(n, path: "auth_service.max_session_ttl", within: .seconds(60)...Duration.seconds(30 * 3600))
        }
        if let node = map["authentication"] {
            let path = "auth_service.authentication"
            let a = try reader.mapping(node, path: path, keys: ["second_factor", "max_failed_logins", "failed_login_window", "lockout_duration"])
            if let n = a["second_factor"] { auth.authentication.secondFactor = try reader.enumeration(n, path: "\(path).second_factor") }
            // SP 800-63B §5.2.2 allows at most 100 consecutive failures.
            if let n = a["max_failed_logins"] { auth.authentication.maxFailedLogins = try reader.integer(n, path: "\(path).max_failed_logins", within: 1...100) }
            if let n = a["failed_login_window"] {
                auth.authentication.failedLoginWindow = try reader.duration(n, path: "\(path).failed_login_window", within: .seconds(1)...Duration.seconds(86400))
            }
            if let n = a["lockout_duration"] {
                auth.authentication.lockoutDuration = try reader.duration(n, path: "\(path).lockout_duration", within: .seconds(1)...Duration.seconds(30 * 86400))
            }
        }
        if let node = map["session_control"] {
            let path = "auth_service.session_control"
            let s = try reader.mapping(node, path: path, keys: [
                "client_idle_timeout", "client_idle_timeout_message", "disconnect_expired_cert", "session_control_timeout",
                "keep_alive_interval", "keep_alive_count_max", "locking_mode",
            ])
            if let n = s["client_idle_timeout"] {
                auth.sessionControl.clientIdleTimeout = try reader.string(n, path: "\(path).client_idle_timeout") == "never"
                    ? nil : try reader.duration(n, path: "\(path).client_idle_timeout", within: .seconds(1)...Duration.seconds(86400))
            }
            if let n = s["client_idle_timeout_message"] { auth.sessionControl.clientIdleTimeoutMessage = try reader.string(n, path: "\(path).client_idle_timeout_message") }
            if let n = s["disconnect_expired_cert"] { auth.sessionControl.disconnectExpiredCert = try reader.bool(n, path: "\(path).disconnect_expired_cert") }
            if let n = s["session_control_timeout"] {
                auth.sessionControl.sessionControlTimeout = try reader.duration(n, path: "\(path).session_control_timeout", within: .seconds(10)...Duration.seconds(3600))
            }
            if let n = s["keep_alive_interval"] {
                auth.sessionControl.keepAliveInterval = try reader.duration(n, path: "\(path).keep_alive_interval", within: .seconds(1)...Duration.seconds(3600))
            }
            if let n = s["keep_alive_count_max"] { auth.sessionControl.keepAliveCountMax = try reader.integer(n, path: "\(path).keep_alive_count_max", within: 1...100) }
            if let n = s["locking_mode"] { auth.sessionControl.lockingMode = try reader.enumeration(n, path: "\(path).locking_mode") }
        }
    }

    /// Two enabled services may not listen on the same address.
    private static func checkListeners(_ c: Configuration, root: Node, file: String) throws {
        var seen: [String: String] = [:]
        let listeners: [(Bool, String, ListenAddress)] = [
            (c.authService.enabled, "auth_service.listen_addr", c.authService.listenAddr),
            (c.proxyService.enabled, "proxy_service.listen_addr", c.proxyService.listenAddr),
            (c.proxyService.enabled, "proxy_service.web_listen_addr", c.proxyService.webListenAddr),
            (c.sshService.enabled, "ssh_service.listen_addr", c.sshService.listenAddr),
        ]
        for (enabled, name, address) in listeners where enabled {
            if let other = seen[address.description] {
                throw ConfigurationError(file: file, message: "\(name) and \(other) both listen on \(address); give each its own port")
            }
            seen[address.description] = name
        }
    }
}
