import Audit
import FIPSCrypto
import Foundation
import Identity
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import SessionControl
import SSH
import SSHHost
import Storage

/// The proxy's SSH side (`proxy_service.listen_addr`, port 3023), passthrough mode: OpenSSH's
/// `ssh -J user@proxy:3023 login@node` opens a `direct-tcpip` channel here, which is routed to
/// the registered Portcullis node of that name (or address) without decrypting anything; the
/// node authenticates the user again, counts the connection (`max_connections`) and records.
/// The jump hop itself is transport: no lease, no recording. Nodes the user's roles cannot see
/// are answered exactly like nodes that do not exist.
public struct ProxyService: Service {
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        /// The proxy's name for its host certificate (the host name by default).
        public var name: String
        public var banner: String?
        public var hostCertificateTTL: Duration
        /// Where users reach the proxy's SSH side (`host:port`), when not at the listen address:
        /// its host is one of the certificate's names.
        public var publicAddress: String?

        public init(host: String = "0.0.0.0", port: Int = 3023, name: String = HostIdentity.hostName, banner: String? = nil,
                    hostCertificateTTL: Duration = .seconds(7 * 24 * 3600), publicAddress: String? = nil) {
            self.host = host
            self.port = port
            self.name = name
            self.publicAddress = publicAddress
            self.banner = banner
            self.hostCertificateTTL = hostCertificateTTL
        }
    }

    let settings: Settings
    let identity: IdentityService
    let backend: Backend
    let crypto: CryptoContext
    let logger: Logger
    let trust = UserCATrust()
    let terminating: TerminatingContext
    /// Admission (locks, `max_connections`) and the open connections, as on a node.
    let controller: SessionController
    public var registry: SessionRegistry { terminating.registry }
    /// What new connections are served with (the host certificate is renewed in it).
    let served = NIOLockedValueBox<SSHServerConfiguration?>(nil)
    /// Connections not yet authenticated, across host-certificate renewals.
    let unauthenticated = UnauthenticatedLimit()

    /// `recordingsRoot`: where terminating-mode sessions are recorded.
    /// `registry`: where its terminating-mode sessions are listed (the daemon shares its node's).
    public init(settings: Settings, identity: IdentityService, audit: AuditPipeline, backend: Backend, keyring: Keyring, crypto: CryptoContext,
                recordingsRoot: String, sessionControlTimeout: Duration = .seconds(120), registry: SessionRegistry = SessionRegistry(),
                policy: SessionPolicy = SessionPolicy(), logger: Logger) {
        self.settings = settings
        self.identity = identity
        self.backend = backend
        self.crypto = crypto
        self.logger = logger
        terminating = TerminatingContext(identity: identity, crypto: crypto, recorders: SessionRecorders(root: recordingsRoot, keyring: keyring),
                                         registry: registry, logger: logger)
        controller = SessionController(locks: identity, limiter: ConnectionSemaphore(backend: backend, leaseDuration: sessionControlTimeout),
                                       emitter: AuditEmitter(audit, logger: logger), policy: policy)
    }

    var nodes: NodeRegistry { NodeRegistry(backend: backend) }

    public func bind() async throws -> Channel {
        try await trust.refresh(from: identity.userCA)
        let hostKey = try await HostIdentity.loadKey(try Keyspace.proxyHostKey(settings.name), backend: backend, crypto: crypto)
        let current = try await serverConfiguration(hostKey: hostKey)
        served.withLockedValue { $0 = current }
        let served = served
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let configuration = served.withLockedValue { $0! }
                return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(SSHServerHandler(configuration: configuration)) }
            }
            .bind(host: settings.host, port: settings.port).get()
        logger.info("proxy listening", metadata: ["addr": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
        return channel
    }

    /// The server's configuration with a new host certificate from the host CA.
    private func serverConfiguration(hostKey: PrivateKey) async throws -> SSHServerConfiguration {
        let principals = HostIdentity.principals(name: settings.name, cluster: identity.settings.clusterName, listenHost: settings.host,
                                                 publicAddress: settings.publicAddress)
        let certificate = try await identity.signHost(hostKey.publicKey, principals: principals, ttl: settings.hostCertificateTTL,
                                                      by: EventActor("proxy:\(settings.name)"))
        let authenticator = ProxyAuthenticator(identity: identity, trust: trust, nodes: nodes, controller: controller, proxyName: settings.name)
        let nodes = nodes, logger = logger, terminating = terminating, port = settings.port, cluster = identity.settings.clusterName
        return SSHServerConfiguration(
            crypto: crypto, hostKeys: [hostKey], hostCertificates: [certificate], authenticator: authenticator, banner: settings.banner,
            unauthenticatedLimit: unauthenticated,
            channelAdmission: { session, opening in
                guard let connection = ControlledConnection.of(session.connection), connection.target != nil else { return nil }
                return connection.admitSession(opening)
            },
            sessionHandlerFactory: { session, channel in
                if let connection = ControlledConnection.of(session.connection), let target = connection.target {
                    // Counted for max_sessions from the moment the channel is accepted, until it closes.
                    let handler = TerminatingSession(connection: connection, target: target, context: terminating, channel: channel)
                    connection.added(handler)
                    return handler
                }
                channel.write(ByteBuffer(string: "This is the Portcullis proxy: use it as a jump host (ssh -J user@proxy:port login@node), or ssh -p port login%host@proxy for a registered OpenSSH host.\r\n"),
                              stderr: true)
                channel.sendExitStatus(1)
                channel.close()
                return nil
            },
            directTCPIPHandler: { session, request, opening in
                guard let connection = ControlledConnection.of(session.connection) else { return opening.reject("not authorized") }
                Self.route(request, opening, session: session, user: connection.identity, nodes: nodes, cluster: cluster, proxyPort: port, logger: logger)
            },
            logger: logger)
    }

    /// With less than half its TTL left, the host certificate is replaced for new connections.
    func renewHostCertificateIfDue(now: Date = Date()) async throws {
        guard let current = served.withLockedValue({ $0 }), let certificate = current.hostCertificates.first, let hostKey = current.hostKeys.first,
              HostIdentity.renewalDue(certificate, ttl: settings.hostCertificateTTL, now: now)
        else { return }
        let renewed = try await serverConfiguration(hostKey: hostKey)
        served.withLockedValue { $0 = renewed }
        logger.info("host certificate renewed")
    }

    /// Ends the connections a new lock matches: terminating ones by any lock, jump tunnels by user
    /// and role locks (login and node locks are the node's to apply).
    func watchLocks() async {
        let connections = controller.connections, logger = logger
        await identity.followLocks(apply: { connections.enforce($0) }, unreliable: { error in
            logger.error("the lock view is unreliable; strict connections are ended, the watch restarts", metadata: ["error": "\(error)"])
            connections.endStrict(reason: SessionMessages.lockViewUnreliable)
        })
    }

    public func run() async throws {
        let channel = try await bind()
        let watcher = Task { await watchLocks() }
        defer { watcher.cancel() }
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await Task.sleep(for: .seconds(10)) } catch { break }
                try? await trust.refresh(from: identity.userCA)
                do { try await renewHostCertificateIfDue() } catch {
                    logger.error("the host certificate could not be renewed; will retry", metadata: ["error": "\(error)"])
                }
            }
        }
        try? await channel.close()
    }

    /// A jump to a node: found by name (any port: the registered address is used) or by its
    /// registered address, and only among the nodes the user's roles can see.
    static func route(_ request: DirectTCPIPRequest, _ opening: SSHChannelOpening, session: SSHSessionContext, user: AdmittedIdentity,
                      nodes: NodeRegistry, cluster: String, proxyPort: Int, logger: Logger) {
        let loop = session.eventLoop
        let pending = NIOLoopBound(opening, eventLoop: loop)
        Task {
            let target = "\(request.host):\(request.port)"
            let found: NodeRecord?
            do {
                // A node's own name first: a node named `db.prod` is not node `db` of cluster `prod`.
                let visible = try await nodes.nodes().filter { user.access.canSee(labels: $0.labels) }
                found = visible.first { $0.name.lowercased() == request.host.lowercased() || $0.address == target }
                    ?? visible.first { ClusterHostNames.matches(request.host, name: $0.name, cluster: cluster) }
            } catch {
                loop.execute { pending.value.reject("the node registry cannot be read right now; try again later") }
                return
            }
            guard let node = found, let address = node.endpoint else {
                logger.notice("jump refused", metadata: ["user": "\(user.user)", "target": "\(target)"])
                loop.execute { pending.value.reject("no node \"\(request.host)\" that you may reach in this cluster (pcsh ls lists yours)") }
                return
            }
            // A tunnel to a plain OpenSSH host would skip everything the proxy enforces there
            // (recording, audit, leases, locks, idle timeout): only terminating mode reaches one.
            guard !node.isOpenSSH else {
                logger.notice("jump to an OpenSSH host refused", metadata: ["user": "\(user.user)", "target": "\(node.name)"])
                loop.execute {
                    pending.value.reject("\(node.name) is an OpenSSH host, reached only through the proxy itself: ssh -p \(proxyPort) LOGIN%\(node.name)@PROXY (or pcsh ssh LOGIN@\(node.name))")
                }
                return
            }
            loop.execute {
                var routed = request
                routed.host = address.host
                routed.port = address.port
                TCPForwarder.open(session, routed, pending.value)
            }
        }
    }
}
