import Audit
import Foundation
import Identity
import NIOCore
import SSH
import YAMLNodes

/// Who a connection was admitted as: for events, limits and timers.
public struct AdmittedIdentity: Sendable {
    public var user: String
    public var login: String
    public var certificate: SSHCertificate
    public var access: AccessChecker
    public var remoteAddress: String
    public var localAddress: String

    public init(user: String, login: String, certificate: SSHCertificate, access: AccessChecker, remoteAddress: String, localAddress: String) {
        self.user = user
        self.login = login
        self.certificate = certificate
        self.access = access
        self.remoteAddress = remoteAddress
        self.localAddress = localAddress
    }
}

/// The host a connection's sessions run on, as events name it.
public struct SessionServer: Sendable, Equatable {
    /// Its registered name (`server_id`, what locks and roles match).
    public var id: String
    public var hostname: String

    public init(id: String, hostname: String) {
        self.id = id
        self.hostname = hostname
    }
}

/// Where a terminating-mode connection goes: a registered plain OpenSSH host, as a login.
public struct TerminatingTarget: Sendable {
    public var node: NodeRecord
    public var login: String

    public init(node: NodeRecord, login: String) {
        self.node = node
        self.login = login
    }
}

/// The cluster's defaults that a user's roles refine (`auth_service.session_control`).
public struct SessionPolicy: Sendable {
    public var clientIdleTimeout: Duration?
    public var clientIdleTimeoutMessage: String
    public var disconnectExpiredCert: Bool
    public var lockingMode: RoleOptions.LockingMode

    public init(clientIdleTimeout: Duration? = .seconds(15 * 60), clientIdleTimeoutMessage: String = "", disconnectExpiredCert: Bool = true,
                lockingMode: RoleOptions.LockingMode = .strict) {
        self.clientIdleTimeout = clientIdleTimeout
        self.clientIdleTimeoutMessage = clientIdleTimeoutMessage
        self.disconnectExpiredCert = disconnectExpiredCert
        self.lockingMode = lockingMode
    }
}

/// A session channel of a controlled connection: told why, when the connection ends.
public protocol ControlledSession: AnyObject {
    func tell(_ message: String)
}

/// One admitted connection's controls (AC-10, AC-12), the same on a node and in the proxy's
/// terminating mode: its session channels (`max_sessions`), the idle timeout, the certificate's
/// expiry, its `max_connections` lease (lost: the connection ends), locks that arrive while it
/// is open, and ending it — a message to every session, `client.disconnect`, SSH DISCONNECT.
/// Confined to the connection's event loop; kept as the connection's attachment.
public final class ControlledConnection: @unchecked Sendable {
    public let identity: AdmittedIdentity
    public let server: SessionServer
    public let control: SSHConnectionControl
    /// When the user last sent or received anything (the idle timeout, `pcctl sessions ls`).
    public let activity: ActivityClock
    public let events: OrderedEvents
    public let maxSessions: Int
    /// In the proxy's terminating mode: the host its sessions are joined to.
    public let target: TerminatingTarget?
    let idleTimeout: Duration?
    let idleMessage: String
    let expiresAt: Date?
    let lockingMode: RoleOptions.LockingMode
    /// What locks are matched against: the login and node, or (a jump tunnel) neither.
    let lockScope: (login: String?, node: String?)
    /// Timers, login and node locks and strict locking apply (false: a jump tunnel).
    let controlled: Bool
    private(set) var lease: (any ConnectionLease)?
    private var sessionsByID: [ObjectIdentifier: any ControlledSession] = [:]
    private var idleTimer: Scheduled<Void>?
    private var expiryTimer: Scheduled<Void>?
    private var ending = false
    private var refusedSessions = 0
    /// The connection's id in its `connection.*` events.
    public let id = AuditEvent.newUID()
    /// Why it ends, once Portcullis ends it (nil: the client or the network did).
    private var endCause: (cause: ConnectionEndCause, reason: String)?

    /// `controlled: false` for a connection whose traffic this process does not see (the
    /// proxy's jump tunnels: the node they reach runs the timers and applies the other locks).
    init(identity: AdmittedIdentity, server: SessionServer, control: SSHConnectionControl, policy: SessionPolicy,
         events: OrderedEvents, controlled: Bool, target: TerminatingTarget? = nil) {
        self.identity = identity
        self.target = target
        self.server = server
        self.control = control
        self.events = events
        // The loop's time (the real clock, but for a test's loop whose time is moved by hand).
        activity = ActivityClock { [loop = control.eventLoop] in loop.now }
        maxSessions = identity.access.maxSessions
        idleTimeout = controlled ? identity.access.clientIdleTimeout(cluster: policy.clientIdleTimeout) : nil
        idleMessage = policy.clientIdleTimeoutMessage
        let validBefore = identity.certificate.validBefore
        expiresAt = controlled && identity.access.disconnectExpiredCert(cluster: policy.disconnectExpiredCert) && validBefore != .max
            ? Date(timeIntervalSince1970: Double(validBefore)) : nil
        lockingMode = identity.access.lockingMode(cluster: policy.lockingMode)
        lockScope = controlled ? (identity.login, server.id) : (nil, nil)
        self.controlled = controlled
    }

    /// The fields every event about this connection carries.
    public var eventFields: ConnectionEventFields {
        ConnectionEventFields(user: identity.user, login: identity.login, serverID: server.id, serverHostname: server.hostname,
                              remoteAddress: identity.remoteAddress, localAddress: identity.localAddress)
    }

    /// Records `event` after this connection's earlier events.
    public func emit(_ event: AuditEvent) { events.emit(event) }

    /// The controlled connection an SSH connection was admitted as (nil: not admitted).
    public static func of(_ control: SSHConnectionControl?) -> ControlledConnection? { control?.attachment as? ControlledConnection }

    /// Takes the lease, arms the timers; what is given back at the close is arranged first, so
    /// no early end (an already expired certificate) can skip it.
    func start(lease: (any ConnectionLease)?, whenClosed: @escaping () -> Void) {
        self.lease = lease
        control.attachment = self
        if controlled {
            emit(.connectionStart(eventFields, id: id, roles: identity.access.roles.map(\.name), max: identity.access.maxConnections))
        }
        control.whenClosed { [self] in
            whenClosed()
            if controlled {
                emit(.connectionEnd(eventFields, id: id, roles: identity.access.roles.map(\.name), max: identity.access.maxConnections,
                                    cause: endCause?.cause ?? .closed, reason: endCause?.reason))
            }
            idleTimer?.cancel()
            expiryTimer?.cancel()
            // Given back the moment the connection closes, not when the lease would expire.
            if let lease { Task { await lease.release() } }
        }
        guard !control.isClosed else { return }
        if let lease {
            // The connection travels weakly to its own loop, where it is used.
            let loop = control.eventLoop, me = WeakConnection(self)
            lease.keepAlive { reason in loop.execute { me.connection?.terminate(.leaseLost, reason) } }
        }
        if let idleTimeout { armIdleTimer(after: idleTimeout) }
        if let expiresAt {
            let remaining = expiresAt.timeIntervalSinceNow
            let message = "client certificate expired at \(Self.utc(expiresAt))"
            if remaining <= 0 { return terminate(.expired, message) }
            expiryTimer = control.eventLoop.scheduleTask(in: .nanoseconds(Int64(remaining * 1e9))) { [weak self] in
                self?.terminate(.expired, message)
            }
        }
    }

    private func armIdleTimer(after delay: Duration) {
        idleTimer = control.eventLoop.scheduleTask(in: TimeAmount(delay)) { [weak self] in
            guard let self, let timeout = self.idleTimeout else { return }
            let idle = self.activity.idle
            if idle >= TimeAmount(timeout) {
                let reason = "Client exceeded idle timeout of \(NodeReader.format(timeout))"
                self.terminate(.idle, reason, message: self.idleMessage.isEmpty ? reason : self.idleMessage)
            } else {
                self.armIdleTimer(after: timeout - Duration(idle))
            }
        }
    }

    /// A lock that arrived while the connection is open ends it if it matches.
    public func enforce(_ lock: Identity.Lock) {
        guard lock.matches(user: identity.user, roles: identity.access.roles.map(\.name), login: lockScope.login, node: lockScope.node) else { return }
        terminate(.lock, lock.refusal)
    }

    /// `max_sessions`, counted from a session channel's acceptance to its close: a reason
    /// refuses the channel (and is a `session.rejected` event). A refused open holds no channel,
    /// so a client could repeat it for ever, each an audit write: past `refusalLimit` refusals
    /// the connection is ended instead.
    public func admitSession(_ opening: SSHChannelOpening) -> String? {
        guard case .session = opening.type, maxSessions > 0, sessionsByID.count >= maxSessions else { return nil }
        refusedSessions += 1
        let refusal = SessionMessages.tooManySessions(user: identity.user, max: maxSessions)
        guard refusedSessions <= Self.refusalLimit else {
            terminate(.tooManyRefusals, "\(refusal); \(Self.refusalLimit) refused already, the connection is closed")
            return refusal
        }
        emit(.sessionRejected(eventFields, reason: SessionMessages.maxSessionsReason, max: maxSessions))
        return refusal
    }

    /// Session channels one connection may have refused before it is ended.
    public static let refusalLimit = 32

    public func added(_ session: any ControlledSession) { sessionsByID[ObjectIdentifier(session)] = session }
    public func removed(_ session: any ControlledSession) { sessionsByID[ObjectIdentifier(session)] = nil }
    /// Its session channels, from acceptance to close.
    public var sessions: [any ControlledSession] { Array(sessionsByID.values) }

    /// Ends the connection for `cause`: `message` on every session's stderr, a `client.disconnect`
    /// event with `reason`, and DISCONNECT with the reason.
    public func terminate(_ cause: ConnectionEndCause, _ reason: String, message: String? = nil) {
        guard !ending, !control.isClosed else { return }
        ending = true
        endCause = (cause, reason)
        let text = message ?? reason
        for session in sessionsByID.values { session.tell(text) }
        emit(.clientDisconnect(eventFields, reason: reason))
        control.disconnect(reason)
    }

    static func utc(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}

/// A weak reference to a connection that may be sent to its loop (and is used only there).
struct WeakConnection: @unchecked Sendable {
    weak var connection: ControlledConnection?
    init(_ connection: ControlledConnection) { self.connection = connection }
}
