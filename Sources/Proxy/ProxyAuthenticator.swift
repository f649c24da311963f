import Audit
import Foundation
import Identity
import NIOCore
import SessionControl
import SSH

/// The proxy's door: a user certificate from our user CA, presented under the user's own name
/// (`ssh -J alice@proxy`) or one of its logins; the user must still exist and not be locked.
/// Which node the user may then reach is decided per jump, by the roles' node labels. A name
/// `login%node` asks for terminating mode to a registered OpenSSH host: the login must be in the
/// certificate and allowed there by the roles, and the connection is admitted as a node admits
/// one (locks, `max_connections`, idle timeout, certificate expiry, `max_sessions`).
struct ProxyAuthenticator: SSHServerAuthenticator {
    let identity: IdentityService
    let trust: UserCATrust
    let nodes: NodeRegistry
    let controller: SessionController
    let proxyName: String

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
        let emitter = controller.emitter
        RefusedAttempts.note(login: login, offer: offer, reason: reason, connection: connection, server: "proxy") { emitter.emit($0) }
    }

    func authorize(_ offer: PublicKeyOffer, connection: SSHConnectionControl) -> EventLoopFuture<AuthenticationDecision> {
        let promise = connection.eventLoop.makePromise(of: AuthenticationDecision.self)
        let identity = identity, nodes = nodes, controller = controller, proxyName = proxyName
        promise.completeWithTask {
            guard let certificate = offer.certificate, let user = try? await identity.user(certificate.keyID), user.status == .active else {
                return .reject("the certificate's user does not exist (any more)")
            }
            let checker = try await identity.accessChecker(for: user)
            let remote = connection.remoteAddress?.hostPortText ?? ""
            let local = connection.localAddress?.hostPortText ?? ""
            let request: AdmissionRequest
            if let wanted = Self.terminating(offer.username) {
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
                let admitted = AdmittedIdentity(user: user.name, login: wanted.login, certificate: certificate, access: checker,
                                                remoteAddress: remote, localAddress: local)
                request = AdmissionRequest(identity: admitted, server: SessionServer(id: node.name, hostname: node.hostname),
                                           holder: "proxy \(node.name) \(remote)", target: TerminatingTarget(node: node, login: wanted.login))
            } else {
                // A jump: the node it reaches admits, limits and times the connection it carries.
                let admitted = AdmittedIdentity(user: user.name, login: offer.username, certificate: certificate, access: checker,
                                                remoteAddress: remote, localAddress: local)
                request = AdmissionRequest(identity: admitted, server: SessionServer(id: proxyName, hostname: proxyName),
                                           holder: "proxy \(remote)", controlled: false)
            }
            switch await controller.admit(request, on: connection) {
            case .failure(let refusal): return .reject(refusal.reason, tellClient: refusal.tellClient)
            case .success: return .accept
            }
        }
        return promise.futureResult
    }
}
