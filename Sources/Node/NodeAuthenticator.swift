import Audit
import Foundation
import Identity
import NIOCore
import SessionControl
import SSH

/// Who may open a connection to the node: a user certificate from our user CA (plain keys and
/// passwords are refused) naming the requested login; then, against the current records, a
/// user that still exists and roles that allow this login on this node; then admission (locks,
/// `max_connections`). Every refusal is an `auth` event; admission's are `session.rejected` too.
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
            let access: AccessChecker
            switch await Self.access(certificate: certificate, login: offer.username, context: context) {
            case .failure(let refusal): return .reject(refusal.reason)
            case .success(let checker): access = checker
            }
            let remote = connection.remoteAddress?.hostPortText ?? ""
            let identity = AdmittedIdentity(user: certificate.keyID, login: offer.username, certificate: certificate, access: access,
                                            remoteAddress: remote, localAddress: connection.localAddress?.hostPortText ?? "")
            let request = AdmissionRequest(identity: identity, server: context.server, holder: "\(context.settings.nodeName) \(remote)")
            switch await context.controller.admit(request, on: connection) {
            case .failure(let refusal): return .reject(refusal.reason, tellClient: refusal.tellClient)
            case .success: return .accept
            }
        }
        return promise.futureResult
    }

    struct Refusal: Error {
        var reason: String
    }

    /// The user behind the certificate, still active, and roles that allow `login` on this node.
    static func access(certificate: SSHCertificate, login: String, context: NodeContext) async -> Result<AccessChecker, Refusal> {
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
        // The host's say over root, whatever the roles grant (sshd's PermitRootLogin), by uid.
        if !context.settings.permitRootLogin, login == "root" || HostAccounts.uid(of: login) == 0 {
            return .failure(Refusal(reason: "node \"\(context.settings.nodeName)\" does not permit root logins (ssh_service.permit_root_login: no)"))
        }
        return .success(access)
    }

    func refused(user login: String, offer: PublicKeyOffer?, reason: String, connection: SSHConnectionControl) {
        let emitter = context.controller.emitter
        RefusedAttempts.note(login: login, offer: offer, reason: reason, connection: connection, server: context.settings.nodeName) {
            emitter.emit($0)
        }
    }
}
