import Audit
import FIPSCrypto
import Foundation
import Identity
import Logging
import Node
import OpenSSLTLS
import Proxy
import ServiceLifecycle
import SessionControl
import SSH
import WebAPI

extension Configuration {
    public var identitySettings: IdentityService.Settings {
        IdentityService.Settings(
            clusterName: authService.clusterName, maxSessionTTL: authService.maxSessionTTL,
            lockout: LockoutPolicy(maxFailures: authService.authentication.maxFailedLogins, window: authService.authentication.failedLoginWindow,
                                   lockout: authService.authentication.lockoutDuration),
            inviteTTL: authService.inviteTTL, caKeyAlgorithm: authService.caKeyType == .ecdsaP256 ? .ecdsaP256 : .ecdsaP384,
            proxySSHAddress: proxyService.enabled ? sshProxyAddress : nil)
    }

    /// Where `pcctl` reaches the running daemon: inside the 0700 data directory.
    public var adminSocketPath: String { (dataDir as NSString).appendingPathComponent("admin.sock") }

    /// Names the self-signed HTTPS certificate is valid for.
    var httpsNames: [String] {
        var names = ["localhost", "127.0.0.1", "::1"]
        var host = [CChar](repeating: 0, count: 256)
        if gethostname(&host, host.count) == 0 { names.append(String(cString: host)) }
        if let publicHost = proxyService.publicHost { names.append(publicHost) }
        if !["0.0.0.0", "::"].contains(proxyService.webListenAddr.host) { names.append(proxyService.webListenAddr.host) }
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }
}

/// The auth service's pieces the daemon runs: the identity service (CAs made at first start),
/// the administration socket, with the proxy the HTTPS login API, and the node (SSH) service.
enum AuthServices {
    static func make(_ configuration: Configuration, storage: ApplianceStorage, audit: AuditPipeline, crypto: CryptoContext,
                     logger: Logger) async throws -> [any Service] {
        guard configuration.authService.enabled else { return [] }
        let identity = try IdentityService(settings: configuration.identitySettings, backend: storage.backend, crypto: crypto, audit: audit)
        try await identity.start()
        var services: [any Service] = []
        var tlsCertificate: String? = nil
        // One registry of live sessions: the node's, and the proxy's terminating-mode ones.
        let sessions = SessionRegistry()
        if configuration.proxyService.enabled {
            let proxy = configuration.proxyService
            // Fails closed: no HTTPS API whose TLS does not work in the provider.
            do {
                let checked = try TLSSelfTest.run(crypto: crypto)
                logger.info("TLS self-test passed", metadata: ["negotiated": "\(checked.version) \(checked.cipher) \(checked.group)"])
            } catch {
                throw TLSIdentityError("the TLS self-test failed in the \(crypto.status.providerName): \(error); the HTTPS API is not started")
            }
            let tls = proxy.httpsCertFile.isEmpty
                ? try await TLSIdentity.selfSigned(in: storage.backend, names: configuration.httpsNames, crypto: crypto)
                : try TLSIdentity.load(certificateFile: proxy.httpsCertFile, keyFile: proxy.httpsKeyFile)
            tlsCertificate = tls.certificatePEM
            let context = ReloadableTLSContext(try tls.context(crypto: crypto))
            if !proxy.httpsCertFile.isEmpty {
                services.append(TLSCertificateReloader(certificateFile: proxy.httpsCertFile, keyFile: proxy.httpsKeyFile, context: context,
                                                        crypto: crypto, logger: logger))
            }
            let recordings = RecordingRoutes(identity: identity, recordings: storage.recordingStore(configuration), audit: audit)
            let login = LoginRoutes(identity: identity, messageOfTheDay: configuration.authService.messageOfTheDay)
            services.append(try APIServers.web(login,
                                               recordings: recordings,
                                               nodes: NodeRoutes(identity: identity, nodes: NodeRegistry(backend: storage.backend)),
                                               console: WebConsoleRoutes(identity: identity, nodes: NodeRegistry(backend: storage.backend), audit: audit,
                                                                         crypto: crypto, messageOfTheDay: configuration.authService.messageOfTheDay,
                                                                         idleTimeout: proxy.webIdleTimeout, proxySSH: configuration.consoleProxyAddress,
                                                                         liveSessions: sessions, recordings: recordings,
                                                                         reports: ApplianceReports(configuration: configuration, log: audit.log,
                                                                                                   backend: storage.backend, crypto: crypto),
                                                                         sharingLimitsWith: login,
                                                                         logger: Logger(label: "portcullis.web")),
                                               host: proxy.webListenAddr.host, port: proxy.webListenAddr.port, tls: context,
                                               logger: logger))
        }
        if configuration.proxyService.enabled {
            let proxy = configuration.proxyService
            services.append(ProxyService(settings: ProxyService.Settings(
                host: proxy.listenAddr.host, port: proxy.listenAddr.port,
                banner: configuration.authService.messageOfTheDay.isEmpty ? nil : configuration.authService.messageOfTheDay,
                publicAddress: configuration.sshProxyAddress),
                identity: identity, audit: audit, backend: storage.backend, keyring: storage.keyring, crypto: crypto,
                recordingsRoot: (configuration.dataDir as NSString).appendingPathComponent("recordings"),
                sessionControlTimeout: configuration.authService.sessionControl.sessionControlTimeout, registry: sessions,
                policy: configuration.nodeSettings.sessionPolicy, logger: Logger(label: "portcullis.proxy")))
        }
        if configuration.sshService.enabled {
            services.append(NodeService(settings: configuration.nodeSettings, identity: identity, audit: audit, backend: storage.backend,
                                        keyring: storage.keyring, crypto: crypto, registry: sessions, logger: Logger(label: "portcullis.node")))
        }
        let rotation = DataKeyRotation(keyring: storage.keyring, audit: audit)
        services.append(APIServers.admin(AdminRoutes(identity: identity, tlsCertificatePEM: tlsCertificate, sessions: sessions,
                                                     nodes: NodeRegistry(backend: storage.backend), recordings: storage.recordingStore(configuration),
                                                     rotateDataKey: { try await rotation.rotate(by: $0) }, audit: audit),
                                         socketPath: configuration.adminSocketPath, logger: logger))
        return services
    }
}

extension Configuration {
    /// Where the web console's terminals to OpenSSH hosts go: the proxy's SSH side on this
    /// machine (its listen address, or loopback when it listens on every address).
    var consoleProxyAddress: ConsoleProxyAddress {
        let listen = proxyService.listenAddr
        return ConsoleProxyAddress(host: ["0.0.0.0", "::"].contains(listen.host) ? "127.0.0.1" : listen.host, port: listen.port,
                                   name: HostIdentity.hostName)
    }

    /// Where users reach the proxy's SSH side: public_addr's host (else this host's name, or the
    /// listen address when it is a specific one) with the SSH listen port.
    var sshProxyAddress: String {
        let listen = proxyService.listenAddr
        let host = proxyService.publicHost ?? (["0.0.0.0", "::"].contains(listen.host) ? HostIdentity.hostName : listen.host)
        return ListenAddress(host: host, port: listen.port).description
    }

    public var nodeSettings: NodeSettings {
        let control = authService.sessionControl
        return NodeSettings(
            host: sshService.listenAddr.host, port: sshService.listenAddr.port,
            nodeName: sshService.nodeName.isEmpty ? HostIdentity.hostName : sshService.nodeName, labels: sshService.labels,
            clusterName: authService.clusterName, clientIdleTimeout: control.clientIdleTimeout,
            clientIdleTimeoutMessage: control.clientIdleTimeoutMessage, disconnectExpiredCert: control.disconnectExpiredCert,
            keepaliveInterval: control.keepAliveInterval, keepaliveCountMax: control.keepAliveCountMax,
            banner: authService.messageOfTheDay.isEmpty ? nil : authService.messageOfTheDay,
            brokerSocket: sshService.brokerSocket.isEmpty ? nil : sshService.brokerSocket, permitRootLogin: sshService.permitRootLogin,
            pam: sshService.pam.enabled ? NodeSettings.PAMSettings(serviceName: sshService.pam.serviceName, environment: sshService.pam.environment) : nil,
            enhancedRecording: sshService.enhancedRecording.enabled
                ? NodeSettings.EnhancedRecordingSettings(ringBufferBytes: sshService.enhancedRecording.ringBufferSize, failedExecs: sshService.enhancedRecording.failedExecs,
                                                         onLoss: sshService.enhancedRecording.strictOnLoss ? .strict : .bestEffort)
                : nil,
            recordingsRoot: (dataDir as NSString).appendingPathComponent("recordings"),
            sessionControlTimeout: control.sessionControlTimeout, lockingMode: control.lockingMode == .strict ? .strict : .bestEffort,
            publicAddress: sshService.publicAddr.isEmpty ? nil : sshService.publicAddr)
    }
}
