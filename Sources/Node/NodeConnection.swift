import Audit
import Foundation
import Identity
import NIOCore
import SessionControl
import SSH
import YAMLNodes

/// Who is on a connection, as authorized: for events, limits and timers.
struct ConnectionIdentity: Sendable {
    var user: String
    var login: String
    var certificate: SSHCertificate
    var access: AccessChecker
    var remoteAddress: String
    var localAddress: String
    /// The connection's place under `max_connections` (nil: the user has no limit).
    var lease: SemaphoreLease?

    /// The fields every event about this connection carries (the reference's names).
    func eventFields(node: String) -> [String: AuditValue] {
        ["user": .string(user), "login": .string(login), "server_id": .string(node), "server_hostname": .string(node),
         "addr.remote": .string(remoteAddress), "addr.local": .string(localAddress)]
    }
}

/// One authorized connection's controls (AC-10/AC-12): its session channels (`max_sessions`),
/// the idle timeout, the certificate's expiry, and ending it with a message. Lives on the
/// connection's event loop (it is the connection's attachment).
final class NodeConnection: @unchecked Sendable {
    let identity: ConnectionIdentity
    let context: NodeContext
    let control: SSHConnectionControl
    let activity = ActivityClock()
    let maxSessions: Int
    let idleTimeout: Duration?
    let expiresAt: Date?
    private(set) var sessions: [ObjectIdentifier: NodeSession] = [:]
    private var idleTimer: Scheduled<Void>?
    private var expiryTimer: Scheduled<Void>?
    /// This connection's events, in order.
    private var lastEvent: Task<Void, Never>?
    private var ending = false

    init(identity: ConnectionIdentity, context: NodeContext, control: SSHConnectionControl) {
        self.identity = identity
        self.context = context
        self.control = control
        maxSessions = identity.access.maxSessions
        idleTimeout = identity.access.clientIdleTimeout(cluster: context.settings.clientIdleTimeout)
        let validBefore = identity.certificate.validBefore
        expiresAt = identity.access.disconnectExpiredCert(cluster: context.settings.disconnectExpiredCert) && validBefore != .max
            ? Date(timeIntervalSince1970: Double(validBefore)) : nil
    }

    var fields: [String: AuditValue] { identity.eventFields(node: context.settings.nodeName) }

    func emit(_ kind: AuditEventKind, _ extra: [String: AuditValue]) {
        lastEvent = context.emit(AuditEvent(kind, fields.merging(extra) { _, new in new }), after: lastEvent)
    }

    /// Arms the timers; called once the connection is authorized. What is given back at the
    /// close is arranged first, so no early end (an already expired certificate) can skip it.
    func start() {
        context.opened(self)
        control.whenClosed { [self] in
            context.closed(self)
            idleTimer?.cancel()
            expiryTimer?.cancel()
            // Given back the moment the connection closes, not when the lease would expire.
            if let lease = identity.lease { Task { await lease.release() } }
        }
        guard !control.isClosed else { return }
        if let lease = identity.lease {
            let loop = control.eventLoop
            lease.keepAlive { [weak self] reason in
                loop.execute { self?.terminate(reason) }
            }
        }
        if let idleTimeout { armIdleTimer(after: idleTimeout) }
        if let expiresAt {
            let remaining = expiresAt.timeIntervalSinceNow
            let message = "client certificate expired at \(Self.utc(expiresAt))"
            if remaining <= 0 { return terminate(message) }
            expiryTimer = control.eventLoop.scheduleTask(in: .nanoseconds(Int64(remaining * 1e9))) { [weak self] in
                self?.terminate(message)
            }
        }
    }

    private func armIdleTimer(after delay: Duration) {
        idleTimer = control.eventLoop.scheduleTask(in: TimeAmount(delay)) { [weak self] in
            guard let self, let timeout = self.idleTimeout else { return }
            let idle = self.activity.idle
            if idle >= TimeAmount(timeout) {
                let reason = "Client exceeded idle timeout of \(NodeReader.format(timeout))"
                let message = context.settings.clientIdleTimeoutMessage
                self.terminate(reason, message: message.isEmpty ? reason : message)
            } else {
                self.armIdleTimer(after: timeout - Duration(idle))
            }
        }
    }

    /// A lock that arrived while the connection is open ends it if it matches.
    func enforce(_ lock: Lock) {
        guard lock.matches(user: identity.user, roles: identity.access.roles.map(\.name), login: identity.login,
                           node: context.settings.nodeName) else { return }
        terminate(lock.refusal)
    }

    /// `max_sessions`: a reason refuses the channel (and is a `session.rejected` event).
    func admit(_ opening: SSHChannelOpening) -> String? {
        guard case .session = opening.type, maxSessions > 0, sessions.count >= maxSessions else { return nil }
        emit(.sessionRejected, ["reason": .string(SessionMessages.maxSessionsReason), "max": .integer(Int64(maxSessions))])
        return SessionMessages.tooManySessions(user: identity.user, max: maxSessions)
    }

    func added(_ session: NodeSession) { sessions[ObjectIdentifier(session)] = session }
    func removed(_ session: NodeSession) { sessions[ObjectIdentifier(session)] = nil }

    /// Ends the connection: `message` on every session's stderr, a `client.disconnect` event
    /// with `reason`, and DISCONNECT with the reason.
    func terminate(_ reason: String, message: String? = nil) {
        guard !ending, !control.isClosed else { return }
        ending = true
        let text = message ?? reason
        for session in sessions.values { session.tell(text) }
        emit(.clientDisconnect, ["reason": .string(reason)])
        control.disconnect(reason)
    }

    static func utc(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

extension Duration {
    init(_ amount: TimeAmount) { self = .nanoseconds(amount.nanoseconds) }
}
