import Foundation

/// A person who can log in. Stored sealed at `identity/users/<name>`.
public struct User: Sendable, Equatable, Codable {
    public enum Status: String, Sendable, Codable { case invited, active }

    public var name: String
    public var roles: [String]
    /// Values roles can refer to, e.g. `logins` for `{{internal.logins}}`.
    public var traits: [String: [String]]
    public var status: Status
    public var passwordHash: PasswordHash?
    /// Base64 of the TOTP secret; present once enrolled.
    public var totpSecret: String?
    /// The last one-time code's time step, so a code is never accepted twice.
    public var lastTOTPStep: Int64?
    /// Where the one outstanding invitation is stored: a new one (a reset) replaces it, so an
    /// older token, perhaps the one that leaked, stops working.
    var pendingInvite: String?
    public var created: Date
    public var createdBy: String

    public init(name: String, roles: [String], traits: [String: [String]] = [:], createdBy: String, created: Date = Date()) {
        self.name = name
        self.roles = roles
        self.traits = traits
        self.status = .invited
        self.created = created
        self.createdBy = createdBy
    }

    /// User names: what OpenSSH certificates and audit events carry, so printable and bounded.
    public static func validate(name: String) throws {
        guard !name.isEmpty, name.utf8.count <= 128, !name.hasPrefix("-"),
              name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._@+-".contains($0)) })
        else { throw IdentityError.invalidName("a user name is 1-128 letters, digits, '.', '_', '@', '+' or '-' (not starting with '-'), not \"\(name.prefix(64))\"") }
    }
}

/// A one-time invitation (or reset) to set a password and enrol TOTP. Only a digest of the
/// token is stored (`identity/invites/<sha256>`), with the backend's expiry.
struct Invite: Sendable, Codable {
    var user: String
    /// Base64 of the TOTP secret the user will enrol.
    var totpSecret: String
    var expires: Date
}

/// Failed logins for a name (existing or not, so lockout does not reveal which names exist),
/// at `identity/attempts/<sha256 of the name>`, expiring with the window or the lock.
struct LoginAttempts: Sendable, Codable {
    var failures: [Date] = []
    var lockedUntil: Date?
}

/// AC-7: after `maxFailures` failed logins within `window`, no login for `lockout`.
public struct LockoutPolicy: Sendable, Equatable {
    public var maxFailures: Int
    public var window: Duration
    public var lockout: Duration

    /// Former FedRAMP Moderate values: 3 in 15 minutes, locked 30 minutes.
    public init(maxFailures: Int = 3, window: Duration = .seconds(900), lockout: Duration = .seconds(1800)) {
        self.maxFailures = maxFailures
        self.window = window
        self.lockout = lockout
    }

    func isLocked(_ attempts: LoginAttempts, now: Date) -> Bool { attempts.lockedUntil.map { now < $0 } ?? false }

    /// The attempts after one more failure at `now`; locked if it is one too many.
    func failing(_ attempts: LoginAttempts, now: Date) -> LoginAttempts {
        var next = attempts
        let windowStart = now.addingTimeInterval(-Double(window.components.seconds))
        next.failures = next.failures.filter { $0 > windowStart } + [now]
        if next.failures.count >= maxFailures {
            next.lockedUntil = now.addingTimeInterval(Double(lockout.components.seconds))
            next.failures = []
        }
        return next
    }
}
