import Audit
import Foundation
import Identity
import Logging
import NIOCore
import SessionControl
import SSH

/// Who the proxy let in, for routing; in terminating mode also where to and the connection's
/// `max_connections` lease.
final class ProxyAccess: @unchecked Sendable {
    let user: String
    let checker: AccessChecker
    let target: TerminatingTarget?
    let lease: SemaphoreLease?
    /// Set on the connection's loop once it is authorized.
    weak var control: SSHConnectionControl?
    /// Its terminating sessions (loop-confined), to be told why the connection ends.
    private var sessionRefs: [WeakSession] = []
    private struct WeakSession { weak var session: TerminatingSession? }

    /// Session channels open in terminating mode, from acceptance to close (`max_sessions`).
    private(set) var openSessions = 0

    func add(_ session: TerminatingSession) {
        sessionRefs.removeAll { $0.session == nil }
        sessionRefs.append(WeakSession(session: session))
        openSessions += 1
    }

    func removed(_ session: TerminatingSession) { openSessions -= 1 }

    /// `max_sessions` for a terminating connection, as the node counts it: a reason refuses the
    /// channel (the reference's message) and is a `session.rejected` event.
    func admitSession(audit: AuditPipeline, logger: Logger) -> String? {
        let limit = checker.maxSessions
        guard let target, limit > 0, openSessions >= limit else { return nil }
        let event = AuditEvent(.sessionRejected, [
            "user": .string(user), "login": .string(target.login), "server_id": .string(target.node.name),
            "addr.remote": .string(control?.remoteAddress?.hostPortText ?? ""),
            "reason": .string(SessionMessages.maxSessionsReason), "max": .integer(Int64(limit)),
        ])
        Task {
            do { _ = try await audit.record(event) } catch { logger.error("an audit event was not recorded", metadata: ["error": "\(error)"]) }
        }
        return SessionMessages.tooManySessions(user: user, max: limit)
    }

    var sessions: [TerminatingSession] { sessionRefs.compactMap(\.session) }

    init(user: String, checker: AccessChecker, target: TerminatingTarget? = nil, lease: SemaphoreLease? = nil) {
        self.user = user
        self.checker = checker
        self.target = target
        self.lease = lease
    }
}

/// The proxy's door: a user certificate from our user CA, presented under the user's own name
/// (`ssh -J alice@proxy`) or one of its logins; the user must still exist and not be locked.
/// Which node the user may then reach is decided per jump, by the roles' node labels. A name
/// `login%node` asks for terminating mode to a registered OpenSSH host: the login must be in the
/// certificate and allowed there by the roles, and the connection counts for `max_connections`.
struct ProxyAuthenticator: SSHServerAuthenticator {
    let identity: IdentityService
    let trust: UserCATrust
    let nodes: NodeRegistry
    let semaphore: ConnectionSemaphore
    let connections: ProxyConnections
    let audit: AuditPipeline

    /// `login%node` (the separator OpenSSH leaves alone in a user name).
    static func terminating(_ username: String) -> (login: String, node: String)? {
        guard let separator = username.firstIndex(of: "%") else { return nil }
        let login = String(username[..<separator]), node = String(username[username.index(after: separator)...])
        return login.isEmpty || node.isEmpty ? nil : (login, node)
    }

    func decide(_ offer: PublicKeyOffer) -> AuthenticationDecision {
        guard let certificate = offer.certificate else { return .reject("plain keys are not accepted; log in for a certificate") }
        let asked = Self.terminating(offer.username)?.login ?? offer.username
        guard asked == certificate.keyID || certificate.principals.contains(asked),
              let principal = certificate.principals.contains(asked) ? asked : certificate.principals.first
        else { return .reject("the certificate of \"\(certificate.keyID)\" is not for \"\(asked)\"") }
        do {
            try certificate.validate(kind: .user, principal: principal, trustedAuthorities: trust.current)
            return .accept
        } catch {
            return .reject("\(error) (key id '\(certificate.keyID)', serial \(certificate.serial))")
        }
    }

    /// Each connection that never gets in is one `auth` event with every reason.
    func refused(user login: String, offer: PublicKeyOffer?, reason: String, connection: SSHConnectionControl) {
        let audit = audit
        RefusedAttempts.note(login: login, offer: offer, reason: reason, connection: connection, server: "proxy") { event in
            Task { _ = try? await audit.record(event) }
        }
    }

    func authorize(_ offer: PublicKeyOffer, connection: SSHConnectionControl) -> EventLoopFuture<AuthenticationDecision> {
        let promise = connection.eventLoop.makePromise(of: AuthenticationDecision.self)
        let identity = identity
        promise.completeWithTask {
            guard let name = offer.certificate?.keyID, let user = try? await identity.user(name), user.status == .active else {
                return .reject("the certificate's user does not exist (any more)")
            }
            let wanted = Self.terminating(offer.username)
            if let lock = try await identity.lockInForce(user: name, roles: user.roles, login: wanted?.login, node: wanted?.node) {
                return .reject("locked by \(lock.name)", tellClient: lock.refusal)
            }
            let checker = try await identity.accessChecker(for: user)
            var target: TerminatingTarget? = nil
            var lease: SemaphoreLease? = nil
            if let wanted {
                let hidden = "no node \"\(wanted.node)\" that you may reach in this cluster (pcsh ls lists yours)"
                guard let node = try await nodes.nodes().first(where: { $0.name == wanted.node && checker.canSee(labels: $0.labels) }) else {
                    return .reject(hidden, tellClient: hidden)
                }
                guard node.isOpenSSH else {
                    let hint = "\(node.name) is a Portcullis node: reach it through the proxy with ssh -J"
                    return .reject(hint, tellClient: hint)
                }
                if case .denied(let reason) = checker.checkLogin(wanted.login, node: node.name, labels: node.labels) {
                    return .reject(reason, tellClient: "access denied: \(reason)")
                }
                target = TerminatingTarget(node: node, login: wanted.login)
                if checker.maxConnections > 0 {
                    do {
                        lease = try await semaphore.acquire(user: name, max: checker.maxConnections, holder: "proxy \(node.name)")
                    } catch let error as SemaphoreError {
                        if case .limitReached = error {
                            _ = try? await audit.record(AuditEvent(.sessionRejected, [
                                "user": .string(name), "login": .string(wanted.login), "server_id": .string(node.name),
                                "reason": .string("\(error)"), "max": .integer(Int64(checker.maxConnections)),
                            ]))
                        }
                        return .reject("\(error)", tellClient: "\(error)")
                    } catch {
                        return .reject("the connection limit could not be checked: \(error)",
                                       tellClient: "access denied: the connection limit for user \"\(name)\" cannot be checked right now; try again later")
                    }
                }
            }
            let access = ProxyAccess(user: name, checker: checker, target: target, lease: lease)
            let connections = connections
            let accepted: Bool
            do { accepted = try await connection.eventLoop.submit {
                guard !connection.isClosed else { return false }
                connection.attachment = access
                access.control = connection
                if target != nil {
                    connections.opened(access)
                    connection.whenClosed { connections.closed(access) }
                }
                if let lease {
                    lease.keepAlive { [weak connection] reason in connection?.eventLoop.execute { connection?.disconnect(reason) } }
                    connection.whenClosed { Task { await lease.release() } }
                }
                return true
            }.get() } catch {
                // A lease no connection took is given back at once, whatever failed.
                await lease?.release()
                throw error
            }
            if !accepted { await lease?.release() }
            return accepted ? .accept : .reject("the connection closed")
        }
        return promise.futureResult
    }
}
