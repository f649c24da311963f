/// What went wrong in the identity service, in words an administrator or user can act on.
/// Login failures are deliberately vague towards the client (`loginFailed`): whether the user
/// exists, or which factor was wrong, is only in the audit event.
public enum IdentityError: Error, Sendable, Equatable, CustomStringConvertible {
    case weakPassword(String)
    case invalidName(String)
    case invalidResource(String)
    case userExists(String)
    case userNotFound(String)
    case roleNotFound(String)
    case roleInUse(role: String, users: [String])
    case inviteInvalid
    case loginFailed
    case accountLocked
    case certificateRefused(String)
    /// A request signed with a certificate's key that does not check out.
    case requestUnauthenticated(String)
    case corruptRecord(String)
    case conflict(String)
    case authorityUnavailable(String)
    /// Too many logins (password checks) at once: try again in a moment.
    case busy

    public var description: String {
        switch self {
        case .weakPassword(let why): return "password refused: \(why)"
        case .invalidName(let why): return why
        case .invalidResource(let why): return why
        case .userExists(let name): return "user \"\(name)\" already exists"
        case .userNotFound(let name): return "user \"\(name)\" not found"
        case .roleNotFound(let name): return "role \"\(name)\" not found"
        case .roleInUse(let role, let users): return "role \"\(role)\" is still assigned to \(users.map { "\"\($0)\"" }.joined(separator: ", ")); take it from them first"
        case .inviteInvalid: return "this invitation is not valid: it was used already, expired, or was never issued; ask an administrator for a new one (pcctl users reset)"
        case .loginFailed: return "invalid user name, password or one-time code"
        case .accountLocked: return "too many failed logins: logins are blocked for a while; try again later or ask an administrator"
        case .certificateRefused(let why): return "no certificate issued: \(why)"
        case .requestUnauthenticated(let why): return "request not authenticated: \(why)"
        case .corruptRecord(let what): return "stored identity data is damaged: \(what)"
        case .conflict(let what): return "\(what) was changed by someone else at the same time; try again"
        case .authorityUnavailable(let why): return "certificate authority unavailable: \(why)"
        case .busy: return "too many logins are being checked right now; try again in a few seconds"
        }
    }
}
