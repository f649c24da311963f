import Audit
import HostSessions
import FIPSCrypto
import Foundation
import LaunchProtocol
import Identity
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PortcullisVersion
import SessionBPF
import ServiceLifecycle
import SessionControl
import SSH
import SSHHost
import Storage

public enum NodeError: Error, CustomStringConvertible {
    case launcherMissing(String)
    /// `ssh_service.enhanced_recording` is on, and this is what stops it.
    case enhancedRecordingUnavailable(String)

    public var description: String {
        switch self {
        case .launcherMissing(let path):
            return "the session launcher \(path) is missing or not executable; install the portcullis package or build portcullis-exec beside the daemon"
        case .enhancedRecordingUnavailable(let reason):
            return "ssh_service.enhanced_recording is enabled, but \(reason)"
        }
    }
}

/// The node service: the SSH server (port 3022) people work on. Its host key is made at first
/// start and kept sealed in the backend; its host certificate comes from the cluster's host CA
/// at every start; it trusts the user CA's current keys (refreshed every `trustRefresh`).
public struct NodeService: Service {
    let context: NodeContext
    let backend: Backend
    let crypto: CryptoContext
    /// Where a node that starts its sessions itself makes their cgroups (nil: the cgroup2 mount).
    let cgroupRoot: String?
    var trustRefresh: Duration = .seconds(10)
    /// Connections not yet authenticated, across host-certificate renewals.
    let unauthenticated = UnauthenticatedLimit()
    /// Enhanced recording's feed, once bound (nil when off).
    let feed = NIOLockedValueBox<ActivityFeed?>(nil)
    let localActivity: LocalActivitySlot

    public init(settings: NodeSettings, identity: IdentityService, audit: AuditPipeline, backend: Backend, keyring: Keyring,
                crypto: CryptoContext, registry: SessionRegistry = SessionRegistry(), logger: Logger, cgroupRoot: String? = nil) {
        let activity = SessionActivityRouter()
        let localActivity = LocalActivitySlot()
        self.localActivity = localActivity
        let controller = SessionController(
            locks: identity, limiter: ConnectionSemaphore(backend: backend, leaseDuration: settings.sessionControlTimeout),
            emitter: AuditEmitter(audit, logger: logger), policy: settings.sessionPolicy)
        context = NodeContext(settings: settings, identity: identity, recorders: SessionRecorders(root: settings.recordingsRoot, keyring: keyring),
                              registry: registry, trust: UserCATrust(),
                              controller: controller, logger: logger,
                              host: settings.brokerSocket.map { BrokerSessionHost(socketPath: $0, logger: logger) as SessionHost }
                                ?? LocalSessionHost(launcherPath: settings.launcherPath, cgroupRoot: cgroupRoot, logger: logger, activity: localActivity),
                              activity: activity)
        self.cgroupRoot = cgroupRoot
        self.backend = backend
        self.crypto = crypto
    }

    public var registry: SessionRegistry { context.registry }
    /// The cluster's node registry this node heartbeats into.
    public var nodes: NodeRegistry { NodeRegistry(backend: backend) }

    /// A bound node: its listening channel and the port it got.
    public struct Listener: Sendable {
        public let channel: Channel
        /// What new connections are served with (the host certificate is renewed in it).
        let configuration: NIOLockedValueBox<SSHServerConfiguration>
        public var port: Int { channel.localAddress?.port ?? 0 }
        public func close() async { try? await channel.close() }
    }

    /// Checks the launcher (or the broker), ends the sessions a previous run left, loads the
    /// trust and host identity, and listens.
    public func bind() async throws -> Listener {
        let settings = context.settings
        if let socket = settings.brokerSocket {
            // The broker ends a session whose connection closed: a previous run left none.
            var status = stat()
            if stat(socket, &status) != 0 || status.st_mode & S_IFMT != S_IFSOCK {
                context.logger.warning("the privilege broker's socket is not there yet: sessions fail until portcullis-privd runs", metadata: ["socket": "\(socket)"])
            }
            context.logger.info("sessions are started by the privilege broker", metadata: ["socket": "\(socket)"])
        } else {
            guard FileManager.default.isExecutableFile(atPath: settings.launcherPath) else { throw NodeError.launcherMissing(settings.launcherPath) }
            if geteuid() != 0 {
                context.logger.warning("the node is not running as root and has no privilege broker (ssh_service.broker_socket): every session will fail")
            }
            _ = SessionEnder.shared
            // Blocks up to the hangup's grace: on a thread of its own, not a task's nor NIO's shared pool.
            let node = self
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                Thread.detachNewThread { node.sweepLeftoverSessions(); done.resume() }
            }
        }
        try startActivityFeed()
        try await context.trust.refresh(from: context.identity.userCA)
        let hostKey = try await loadHostKey()
        let configuration = NIOLockedValueBox(try await serverConfiguration(hostKey: hostKey))
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let current = configuration.withLockedValue { $0 }
                return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(SSHServerHandler(configuration: current)) }
            }
            .bind(host: settings.host, port: settings.port).get()
        context.logger.info("node listening", metadata: [
            "addr": "\(channel.localAddress.map { "\($0)" } ?? "?")", "node": "\(settings.nodeName)",
            "host_cert_principals": "\(hostPrincipals.joined(separator: ","))",
        ])
        return Listener(channel: channel, configuration: configuration)
    }

    /// Enhanced recording, when configured: the broker's feed, or the node's own BPF programs
    /// (as root without the broker); a node that cannot have it refuses to start, with the
    /// missing piece named. When it is off, BPF is never touched.
    private func startActivityFeed() throws {
        guard let enhanced = context.settings.enhancedRecording, feed.withLockedValue({ $0 == nil }) else { return }
        let started: ActivityFeed
        if let socket = context.settings.brokerSocket {
            do { started = try BrokerActivityFeed(socketPath: socket, router: context.activity, logger: context.logger) } catch {
                throw NodeError.enhancedRecordingUnavailable("the privilege broker does not feed it: \(error)")
            }
            context.logger.info("enhanced recording through the privilege broker")
        } else {
            guard geteuid() == 0 else {
                throw NodeError.enhancedRecordingUnavailable("loading BPF programs needs root: run the node as root, or through the privilege broker (ssh_service.broker_socket)")
            }
            let monitor: SessionMonitor
            do { monitor = try SessionMonitor(SessionMonitor.Options(ringBufferBytes: enhanced.ringBufferBytes, failedExecs: enhanced.failedExecs)) } catch {
                throw NodeError.enhancedRecordingUnavailable("\(error)")
            }
            let local = LocalActivityFeed(monitor, router: context.activity)
            localActivity.set(local)
            started = local
            context.logger.info("enhanced recording on", metadata: ["connects": "\(monitor.connectHook)", "failed_execs": "\(monitor.failedExecs)"])
        }
        feed.withLockedValue { $0 = started }
    }

    /// Stops enhanced recording's feed (the service's end).
    public func stopActivityFeed() {
        feed.withLockedValue { feed in
            feed?.stop()
            feed = nil
        }
        localActivity.set(nil)
    }

    /// Before the node listens none of the session cgroups under its root is a session of its own:
    /// they are what a daemon killed outright (SIGKILL, a crash) left, and are removed.
    private func sweepLeftoverSessions() {
        let logger = context.logger
        let sweep: SessionCgroup.Sweep
        do {
            sweep = try SessionCgroup.sweep(root: cgroupRoot)
        } catch {
            return logger.warning("leftover session cgroups could not be looked for", metadata: ["error": "\(error)"])
        }
        for leftover in sweep.leftovers where !leftover.ended.isEmpty {
            logger.warning("ended the processes of a session a previous run left running, unrecorded and uncontrolled",
                           metadata: ["sid": "\(leftover.sessionID)", "pids": "\(leftover.ended.map(String.init).joined(separator: ","))"])
        }
        for failure in sweep.leftovers.flatMap(\.failures) {
            logger.error("a leftover session cgroup could not be removed", metadata: ["error": "\(failure)"])
        }
        for problem in sweep.problems {
            logger.warning("a leftover launcher's cleanup", metadata: ["problem": "\(problem)"])
        }
        logger.log(level: sweep.removed.isEmpty ? .debug : .notice, "removed \(sweep.removed.count) leftover session cgroups", metadata: [
            "ended_processes": "\(sweep.removed.reduce(0) { $0 + $1.ended.count })",
        ])
    }

    /// The server's configuration with a new host certificate from the host CA.
    private func serverConfiguration(hostKey: PrivateKey) async throws -> SSHServerConfiguration {
        let settings = context.settings
        let certificate = try await context.identity.signHost(hostKey.publicKey, principals: hostPrincipals, ttl: settings.hostCertificateTTL,
                                                              by: EventActor("node:\(settings.nodeName)"))
        let context = context
        return SSHServerConfiguration(
            crypto: crypto, hostKeys: [hostKey], hostCertificates: [certificate], authenticator: NodeAuthenticator(context: context),
            banner: settings.banner, unauthenticatedLimit: unauthenticated,
            keepaliveInterval: TimeAmount(settings.keepaliveInterval), keepaliveMaximumMissed: settings.keepaliveCountMax,
            channelAdmission: { session, opening in ControlledConnection.of(session.connection)?.admitSession(opening) },
            sessionHandlerFactory: { session, channel in
                guard let connection = ControlledConnection.of(session.connection) else { return nil }
                // Counted for max_sessions from the moment the channel is accepted, until it closes.
                let handler = NodeSession(connection: connection, context: context, channel: channel)
                connection.added(handler)
                return handler
            },
            directTCPIPHandler: { session, request, opening in
                guard let connection = ControlledConnection.of(session.connection) else { return opening.reject("not authorized") }
                Self.forward(request, opening, session: session, connection: connection)
            },
            logger: context.logger)
    }

    public func run() async throws {
        let listener = try await bind()
        let watcher = Task { await watchLocks() }
        let heartbeats = Task { await heartbeat(port: listener.port) }
        let sweeper = Task { await sweepHostUsers() }
        defer {
            watcher.cancel()
            heartbeats.cancel()
            sweeper.cancel()
        }
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await Task.sleep(for: trustRefresh) } catch { break }
                do { try await context.trust.refresh(from: context.identity.userCA) } catch {
                    context.logger.error("the user CA's keys could not be refreshed; the last ones stay trusted", metadata: ["error": "\(error)"])
                }
                do { try await renewHostCertificateIfDue(listener) } catch {
                    context.logger.error("the host certificate could not be renewed; will retry", metadata: ["error": "\(error)"])
                }
            }
        }
        await listener.close()
        stopActivityFeed()
    }

    /// Keeps this node's record in the registry (`pcctl nodes ls`, the proxy's routing) while it
    /// runs (`run` does; a caller that only `bind`s, as the benchmarks do, runs it itself).
    public func heartbeat(port: Int) async {
        let settings = context.settings
        let host = ["0.0.0.0", "::"].contains(settings.host) ? "127.0.0.1" : settings.host
        let address = settings.publicAddress ?? (host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
        while !Task.isCancelled {
            do {
                try await nodes.heartbeat(NodeRecord(name: settings.nodeName, address: address, labels: settings.labels,
                                                        hostname: HostIdentity.hostName, version: PortcullisVersion.version, lastHeartbeat: Date()))
            } catch {
                context.logger.error("the node's heartbeat could not be written", metadata: ["error": "\(error)"])
            }
            do { try await Task.sleep(for: nodes.interval) } catch { break }
        }
        try? await nodes.deregister(settings.nodeName)
    }

    /// Drop-mode host users outlive their last session only when a launcher could not remove
    /// them (it was killed, the host crashed, a process of theirs lingered): swept at start and
    /// every `hostUserSweepInterval`. Stops when the host says it makes no host users; any
    /// other failure (the broker restarting) is retried at the next interval.
    func sweepHostUsers() async {
        while !Task.isCancelled {
            do { _ = try await sweepHostUsersOnce() } catch {
                if case BrokerConnection.Failure.refused(_, let reason) = error, reason.contains("--create-host-users") {
                    return context.logger.info("no host user sweep: this host makes no host users", metadata: ["reason": "\(reason)"])
                }
                if case let failure as ProcessSpawner.Failure = error, failure.description.contains("not root") {
                    return context.logger.debug("no host user sweep: \(failure)")
                }
                context.logger.warning("the host user sweep failed; it is tried again later", metadata: ["error": "\(error)"])
            }
            do { try await Task.sleep(for: context.settings.hostUserSweepInterval) } catch { break }
        }
    }

    /// One sweep: the users removed, each audited (`host_user.delete`, reason `sweep`).
    func sweepHostUsersOnce() async throws -> [HostUserChange] {
        let context = context
        let removed = NIOLockedValueBox<[HostUserChange]>([])
        try await context.host.sweepHostUsers(on: MultiThreadedEventLoopGroup.singleton.any()) { change in
            removed.withLockedValue { $0.append(change) }
            context.controller.emitter.emit(change.event(connection: nil, sid: nil, server: context.settings.nodeName))
            context.logger.notice("removed a host user left behind", metadata: ["login": "\(change.login)"])
        }.get()
        return removed.withLockedValue { $0 }
    }

    /// Ends the open connections a new lock matches, as it is created (the change feed reports
    /// a write by this process at once, by another within its poll interval). If the lock view
    /// fails, connections whose roles' `lock` mode is strict end ("preventive lock-out"); the
    /// others keep the last view until it is back (best_effort).
    func watchLocks() async {
        let context = context
        await context.identity.followLocks(apply: { context.controller.connections.enforce($0) }, unreliable: { error in
            context.logger.error("the lock view is unreliable; strict connections are ended, the watch restarts", metadata: ["error": "\(error)"])
            context.controller.connections.endStrict(reason: SessionMessages.lockViewUnreliable)
        })
    }

    /// With less than half its TTL left, the host certificate is replaced for new connections.
    func renewHostCertificateIfDue(_ listener: Listener, now: Date = Date()) async throws {
        let current = listener.configuration.withLockedValue { $0 }
        guard let certificate = current.hostCertificates.first, let hostKey = current.hostKeys.first else { return }
        guard HostIdentity.renewalDue(certificate, ttl: context.settings.hostCertificateTTL, now: now) else { return }
        let renewed = try await serverConfiguration(hostKey: hostKey)
        listener.configuration.withLockedValue { $0 = renewed }
        context.logger.info("host certificate renewed", metadata: ["valid_before": "\(renewed.hostCertificates.first?.validBefore ?? 0)"])
    }

    var hostPrincipals: [String] { HostIdentity.principals(name: context.settings.nodeName, cluster: context.settings.clusterName, listenHost: context.settings.host,
                                                      publicAddress: context.settings.publicAddress) }

    private func loadHostKey() async throws -> PrivateKey {
        try await HostIdentity.loadKey(try Keyspace.nodeHostKey(context.settings.nodeName), backend: backend, crypto: crypto)
    }

    /// `direct-tcpip`: only for roles that permit port forwarding; each is a `port` event.
    static func forward(_ request: DirectTCPIPRequest, _ opening: SSHChannelOpening, session: SSHSessionContext, connection: ControlledConnection) {
        let address = "\(request.host):\(request.port)"
        guard connection.identity.access.portForwarding else {
            connection.emit(.port(connection.eventFields, address: address, error: "port forwarding is not permitted by the user's roles"))
            return opening.reject("port forwarding is not permitted for user \"\(connection.identity.user)\"")
        }
        let activity = connection.activity
        let loop = session.eventLoop
        let bound = NIOLoopBound(connection, eventLoop: loop)
        TCPForwarder.open(session, request, opening, onActivity: { activity.touch() }, onResult: { failure in
            loop.execute {
                bound.value.emit(.port(bound.value.eventFields, address: address, error: failure))
            }
        })
    }
}
