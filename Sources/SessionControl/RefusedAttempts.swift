import Audit
import SSH

/// A connection's refused authentication attempts, gathered until it ends: one `auth` T3007W
/// event then, if it never got in. A client that tries its plain key before its certificate
/// (OpenSSH does) and then gets in leaves no false alarm; a refused one leaves every reason.
/// Kept as the connection's attachment until an authorized state replaces it.
public final class RefusedAttempts {
    var login = ""
    var user: String?
    var reasons: [String] = []

    /// Called from an authenticator's `refused`; `emit` records the event at the end.
    public static func note(login: String, offer: PublicKeyOffer?, reason: String, connection: SSHConnectionControl, server: String,
                            emit: @escaping (AuditEvent) -> Void) {
        let attempts: RefusedAttempts
        if let existing = connection.attachment as? RefusedAttempts {
            attempts = existing
        } else {
            attempts = RefusedAttempts()
            connection.attachment = attempts
            connection.whenClosed { [weak connection] in
                guard let connection, let attempts = connection.attachment as? RefusedAttempts else { return }
                emit(.authFailure(login: attempts.login, user: attempts.user, remoteAddress: connection.remoteAddress?.hostPortText ?? "",
                                  server: server, error: attempts.reasons.joined(separator: "; ")))
            }
        }
        attempts.login = String(login.prefix(256))
        if let certificate = offer?.certificate { attempts.user = String(certificate.keyID.prefix(256)) }
        if !attempts.reasons.contains(reason) && attempts.reasons.count < 8 { attempts.reasons.append(reason) }
    }
}
