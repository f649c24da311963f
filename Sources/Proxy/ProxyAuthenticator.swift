import Foundation
import Identity
import NIOCore
import Node
import SSH

/// Who the proxy let in, for routing.
final class ProxyAccess: @unchecked Sendable {
    let user: String
    let checker: AccessChecker

    init(user: String, checker: AccessChecker) {
        self.user = user
        self.checker = checker
    }
}

/// The jump host's door: a user certificate from our user CA, presented under the user's own
/// name (`ssh -J alice@proxy`) or one of its logins; the user must still exist and not be locked.
/// Which node the user may then reach is decided per jump, by the roles' node labels.
struct ProxyAuthenticator: SSHServerAuthenticator {
    let identity: IdentityService
    let trust: UserCATrust

    func decide(_ offer: PublicKeyOffer) -> AuthenticationDecision {
        guard let certificate = offer.certificate else { return .reject("plain keys are not accepted; log in for a certificate") }
        guard offer.username == certificate.keyID || certificate.principals.contains(offer.username),
              let principal = certificate.principals.first
        else { return .reject("the certificate of \"\(certificate.keyID)\" is not for \"\(offer.username)\"") }
        do {
            try certificate.validate(kind: .user, principal: principal, trustedAuthorities: trust.current)
            return .accept
        } catch {
            return .reject("\(error) (key id '\(certificate.keyID)', serial \(certificate.serial))")
        }
    }

    func authorize(_ offer: PublicKeyOffer, connection: SSHConnectionControl) -> EventLoopFuture<AuthenticationDecision> {
        let promise = connection.eventLoop.makePromise(of: AuthenticationDecision.self)
        let identity = identity
        promise.completeWithTask {
            guard let name = offer.certificate?.keyID, let user = try? await identity.user(name), user.status == .active else {
                return .reject("the certificate's user does not exist (any more)")
            }
            if let lock = try await identity.lockInForce(user: name, roles: user.roles) {
                return .reject("locked by \(lock.name)", tellClient: lock.refusal)
            }
            let access = ProxyAccess(user: name, checker: try await identity.accessChecker(for: user))
            return try await connection.eventLoop.submit {
                guard !connection.isClosed else { return AuthenticationDecision.reject("the connection closed") }
                connection.attachment = access
                return .accept
            }.get()
        }
        return promise.futureResult
    }
}
