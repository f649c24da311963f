import Audit
import FIPSCrypto
import Foundation
import SSH
import Storage

/// A login: password + TOTP + the public key to certify.
public struct LoginRequest: Sendable {
    public var user: String
    public var password: String
    public var totpCode: String
    /// An OpenSSH public key line (`ecdsa-sha2-nistp256 AAAA…`).
    public var publicKey: String
    /// Asked-for certificate lifetime; capped by the roles and the cluster.
    public var ttl: Duration?
    public var remoteAddress: String?
    public var userAgent: String?

    public init(user: String, password: String, totpCode: String, publicKey: String, ttl: Duration? = nil,
                remoteAddress: String? = nil, userAgent: String? = nil) {
        self.user = user
        self.password = password
        self.totpCode = totpCode
        self.publicKey = publicKey
        self.ttl = ttl
        self.remoteAddress = remoteAddress
        self.userAgent = userAgent
    }
}

/// What a successful login earns.
public struct LoginResult: Sendable {
    public var certificate: SSHCertificate
    public var roles: [String]
    public var logins: [String]
    public var validBefore: Date
    /// `@cert-authority` lines for the cluster's host CA keys, scoped to the cluster's host names.
    public var knownHosts: [String]
}

extension IdentityService {
    /// Checks lockout, password and one-time code, then signs a user certificate for the
    /// roles' logins. Every outcome is a `user.login` event; the caller's error never says
    /// which factor failed or whether the user exists (the event does).
    public func login(_ request: LoginRequest, now: Date = Date()) async throws -> LoginResult {
        let source = LoginSource(remoteAddress: request.remoteAddress, userAgent: request.userAgent)
        let subject: PublicKey
        do {
            subject = try Self.parsePublicKey(request.publicKey, using: crypto)
        } catch {
            try await audit.record(.userLoginFailure(user: request.user, source: source, error: "unusable public key: \(error)"))
            throw IdentityError.certificateRefused("the public key is not usable: \(error)")
        }
        let (user, checker) = try await verifyFactors(user: request.user, password: request.password, totpCode: request.totpCode,
                                                      source: source, method: "local", now: now)
        let logins = checker.logins
        guard !logins.isEmpty else {
            try await audit.record(.userLoginFailure(user: request.user, source: source, error: "no role allows any login"))
            throw IdentityError.certificateRefused("your roles (\(user.roles.joined(separator: ", "))) allow no logins; ask an administrator")
        }
        let cap = checker.maxSessionTTL(cap: settings.maxSessionTTL)
        let ttl = min(request.ttl ?? cap, cap)
        let certificate = try await userCA.sign(subject, keyID: user.name, principals: logins, validFor: ttl,
                                                extensions: checker.certificateExtensions, now: now)
        let validBefore = Date(timeIntervalSince1970: TimeInterval(certificate.validBefore))
        try await audit.record(.userLogin(user: user.name, source: source))
        try await audit.record(.userCertificateIssued(user: user.name, roles: user.roles, logins: logins, expires: validBefore, serial: certificate.serial))
        let hostKeys = try await hostCA.trustedKeys()
        return LoginResult(certificate: certificate, roles: user.roles, logins: logins, validBefore: validBefore,
                           knownHosts: CertificateAuthority.knownHostsLines(hostKeys, patterns: settings.knownHostPatterns))
    }

    /// A certificate for one web terminal: a key the console made for it, the one login the
    /// person picked, valid no longer than their web session nor their roles' `max_session_ttl`
    /// (the node ends the connection when it expires). A `cert.create` event, as for `pcsh login`.
    public func signWebTerminal(_ key: PublicKey, user: User, checker: AccessChecker, login: String, until end: Date,
                                now: Date = Date()) async throws -> SSHCertificate {
        let cap = checker.maxSessionTTL(cap: settings.maxSessionTTL)
        let ttl = min(Duration.seconds(max(1, Int64(end.timeIntervalSince(now)))), cap)
        let certificate = try await userCA.sign(key, keyID: user.name, principals: [login], validFor: ttl,
                                                extensions: checker.certificateExtensions, now: now)
        try await audit.record(.userCertificateIssued(user: user.name, roles: user.roles, logins: [login],
                                                      expires: Date(timeIntervalSince1970: TimeInterval(certificate.validBefore)), serial: certificate.serial))
        return certificate
    }

    /// A person's two factors, as every login checks them (pcsh's and the web console's): the
    /// lockout counters (AC-7), password (or the decoy's work), the one-time code spent once, and
    /// no lock in force. Failures are `user.login` (`T1000W`) events with `method`; the caller
    /// records the success, as what it grants differs.
    public func verifyFactors(user name: String, password: String, totpCode: String, source: LoginSource, method: String,
                              now: Date = Date()) async throws -> (User, AccessChecker) {
        func failed(_ reason: String, _ error: IdentityError = .loginFailed, lockedUntil: Date? = nil) async throws -> Never {
            try await audit.record(.userLoginFailure(user: name, method: method, source: source, error: reason, lockedUntil: lockedUntil))
            throw error
        }
        // Refused for load before it counts: a busy appliance must not lock its users out.
        guard hashing.hasRoom else { try await failed("not checked: too many logins at once", .busy) }
        // The attempt is counted as a failure before anything is checked (and forgiven on
        // success), so guesses sent in parallel cannot outrun the lock.
        let attemptsKey = try digestKey(Keyspace.loginAttempts, name)
        var lockedIfThisFails: Date? = nil
        switch try await registerAttempt(attemptsKey, now: now) {
        case .locked: try await failed("account locked after repeated failures", .accountLocked)
        case .lastAllowed(let until): lockedIfThisFails = until
        case .allowed: break
        }

        let stored = try? await user(name)
        // The same PBKDF2 work whether or not the user exists or is enrolled.
        let hash = stored?.passwordHash ?? decoy
        let crypto = crypto
        let passwordMatches: Bool
        do {
            passwordMatches = try await hashing.run { try hash.matches(password, using: crypto) } && stored?.passwordHash != nil
        } catch IdentityError.busy {
            try await failed("not checked: too many logins at once", .busy)
        }
        var step: Int64? = nil
        if let secretText = stored?.totpSecret, let secret = Base64.decode(secretText) {
            step = try TOTP(secret: secret, using: crypto).verify(totpCode, at: now, lastUsedStep: stored?.lastTOTPStep)
        }
        guard let user = stored, user.status == .active, passwordMatches, let step else {
            let reason = stored == nil ? "unknown user"
                : stored?.status != .active ? "user has not accepted the invitation"
                : !passwordMatches ? "wrong password" : "wrong or reused one-time code"
            try await failed(reason, lockedUntil: lockedIfThisFails)
        }

        // Spend the code: a concurrent login with the same code loses this race.
        let spent = try await modifyUserIf(user.name) { current in
            guard (current.lastTOTPStep ?? .min) < step else { return false }
            current.lastTOTPStep = step
            return true
        }
        if spent == nil { try await failed("one-time code reused concurrently") }
        _ = try await backend.delete(attemptsKey)

        if let lock = try await lockInForce(user: user.name, roles: user.roles, now: now) {
            try await failed("locked by \(lock.name)", .certificateRefused(lock.refusal))
        }
        return (user, try await accessChecker(for: user))
    }

    enum AttemptAdmission {
        case allowed
        /// Allowed, and the name is locked until then if this attempt fails too.
        case lastAllowed(until: Date)
        case locked
    }

    /// Counts one attempt for a name (compare-and-swap, so concurrent attempts all count).
    func registerAttempt(_ key: String, now: Date) async throws -> AttemptAdmission {
        for _ in 0..<20 {
            let item = try await backend.get(key)
            let attempts = try item.map { try decode(LoginAttempts.self, $0.value, what: "login attempts") } ?? LoginAttempts()
            if settings.lockout.isLocked(attempts, now: now) { return .locked }
            let next = settings.lockout.failing(attempts, now: now)
            let expires = next.lockedUntil ?? now.addingTimeInterval(Double(settings.lockout.window.components.seconds))
            let value = try encode(next)
            let stored = if let item {
                try await backend.compareAndSwap(key, expectedRevision: item.revision, value: value, expires: expires)
            } else {
                try await backend.create(key, value: value, expires: expires)
            }
            if stored != nil { return next.lockedUntil.map { .lastAllowed(until: $0) } ?? .allowed }
        }
        throw IdentityError.conflict("the login attempts of this user")
    }

    /// `ecdsa-sha2-nistp256 AAAA… [comment]` → the key, or an error a client can act on.
    public static func parsePublicKey(_ line: String, using crypto: CryptoContext) throws -> PublicKey {
        do { return try PublicKey(authorizedKeyLine: line, using: crypto) } catch { throw IdentityError.invalidResource("\(error)") }
    }
}

extension IdentityService {
    /// A `user.login` failure for a request that never reached a login (malformed, too large, a
    /// spent or unknown invitation), so probing leaves evidence too. A request whose evidence
    /// cannot be written fails with that error instead.
    public func recordRejectedRequest(method: String, user: String?, reason: String, remoteAddress: String?, userAgent: String?) async throws {
        try await audit.record(.userLoginFailure(user: user, method: method, source: LoginSource(remoteAddress: remoteAddress, userAgent: userAgent),
                                                 error: reason))
    }
}
