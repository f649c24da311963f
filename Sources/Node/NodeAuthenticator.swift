import Audit
import Foundation
import Identity
import NIOCore
import SessionControl
import SSH

/// Who may open a connection to the node: a user certificate from our user CA (plain keys and
/// passwords are refused) naming the requested login; then, against the current records, a
/// user that still exists and roles that allow this login on this node. Every refusal is an
/// `auth` event.
struct NodeAuthenticator: SSHServerAuthenticator {
    let context: NodeContext

    func decide(_ offer: PublicKeyOffer) -> AuthenticationDecision {
        CertificateAuthenticator(trustedAuthorities: context.trust.current).decide(offer)
    }

    func authorize(_ offer: PublicKeyOffer, connection: SSHConnectionControl) -> EventLoopFuture<AuthenticationDecision> {
        let promise = connection.eventLoop.makePromise(of: AuthenticationDecision.self)
        let context = context
        promise.completeWithTask {
            guard let certificate = offer.certificate else { return .reject("plain keys are not accepted") }
            let identity: ConnectionIdentity
            switch await Self.authorize(certificate: certificate, login: offer.username, connection: connection, context: context) {
            case .failure(let refusal):
                if let lock = refusal.lock {
                    context.emit(AuditEvent(.sessionRejected, [
                        "user": .string(certificate.keyID), "login": .string(offer.username), "server_id": .string(context.settings.nodeName),
                        "addr.remote": .string(Self.describe(connection.remoteAddress)), "reason": .string(lock.refusal), "max": 0,
                    ]))
                }
                return .reject(refusal.reason, tellClient: refusal.tellClient)
            case .success(let authorized): identity = authorized
            }
            // The connection's state is made on its own loop (unless it went away meanwhile);
            // a lease no connection took is given back at once, whatever failed.
            let accepted: Bool
            do {
                accepted = try await connection.eventLoop.submit {
                    guard !connection.isClosed else { return false }
                    let node = NodeConnection(identity: identity, context: context, control: connection)
                    connection.attachment = node
                    node.start()
                    return true
                }.get()
            } catch {
                await identity.lease?.release()
                throw error
            }
            if !accepted { await identity.lease?.release() }
            return accepted ? .accept : .reject("the connection closed while it was being authorized")
        }
        return promise.futureResult
    }

    struct Refusal: Error {
        var reason: String
        /// Shown to the client (as a banner) besides the plain refusal.
        var tellClient: String? = nil
        var lock: Lock? = nil
    }

    static func authorize(certificate: SSHCertificate, login: String, connection: SSHConnectionControl,
                          context: NodeContext) async -> Result<ConnectionIdentity, Refusal> {
        let name = certificate.keyID
        let user: User
        do {
            user = try await context.identity.user(name)
        } catch {
            return .failure(Refusal(reason: "user \"\(name)\" of the certificate does not exist (any more)"))
        }
        guard user.status == .active else { return .failure(Refusal(reason: "user \"\(name)\" is not active")) }
        let access: AccessChecker
        do {
            access = try await context.identity.accessChecker(for: user)
        } catch {
            return .failure(Refusal(reason: "the roles of user \"\(name)\" could not be read: \(error)"))
        }
        if case .denied(let reason) = access.checkLogin(login, node: context.settings.nodeName, labels: context.settings.labels) {
            return .failure(Refusal(reason: reason))
        }
        let lock: Lock?
        do {
            lock = try await context.identity.lockInForce(user: name, roles: user.roles, login: login, node: context.settings.nodeName)
        } catch {
            // Locks that cannot be read: fail closed (a lock may be exactly what is missing).
            return .failure(Refusal(reason: "the locks could not be read: \(error)", tellClient: "access denied: the node cannot check locks right now; try again later"))
        }
        if let lock {
            return .failure(Refusal(reason: "locked by \(lock.name) (\(lock.target.description))", tellClient: lock.refusal, lock: lock))
        }
        var lease: SemaphoreLease? = nil
        let limit = access.maxConnections
        if limit > 0 {
            do {
                lease = try await context.semaphore.acquire(user: name, max: limit,
                                                            holder: "\(context.settings.nodeName) \(Self.describe(connection.remoteAddress))")
            } catch let error as SemaphoreError {
                if case .limitReached = error {
                    context.emit(AuditEvent(.sessionRejected, [
                        "user": .string(name), "login": .string(login), "server_id": .string(context.settings.nodeName),
                        "addr.remote": .string(Self.describe(connection.remoteAddress)), "reason": .string("\(error)"),
                        "max": .integer(Int64(limit)),
                    ]))
                }
                return .failure(Refusal(reason: "\(error)", tellClient: "\(error)"))
            } catch {
                // The cluster's state cannot be reached: a limited user gets no new connection.
                return .failure(Refusal(reason: "the connection limit could not be checked: \(error)",
                                        tellClient: "access denied: the connection limit for user \"\(name)\" cannot be checked right now; try again later"))
            }
        }
        return .success(ConnectionIdentity(user: name, login: login, certificate: certificate, access: access,
                                           remoteAddress: Self.describe(connection.remoteAddress),
                                           localAddress: Self.describe(connection.localAddress), lease: lease))
    }

    func refused(user login: String, offer: PublicKeyOffer?, reason: String, connection: SSHConnectionControl) {
        let context = context
        RefusedAttempts.note(login: login, offer: offer, reason: reason, connection: connection, server: context.settings.nodeName) {
            context.emit($0)
        }
    }

    /// `ip:port`, as events carry addresses.
    static func describe(_ address: SocketAddress?) -> String { address?.hostPortText ?? "" }
}
