import Audit
import FIPSCrypto
import Foundation
import Logging
import SSH
import Storage

/// The auth service's identity half: users, roles, invitations, logins and the certificates
/// they earn. State lives in the (sealed) backend; every change is an audit event.
public struct IdentityService: Sendable {
    public struct Settings: Sendable {
        public var clusterName: String
        /// The longest certificate any login gets (roles may only shorten it).
        public var maxSessionTTL: Duration
        public var lockout: LockoutPolicy
        public var inviteTTL: Duration
        public var passwordIterations: Int
        /// For the CAs' first keys and for rotations (P-384 by default; P-256 allowed).
        public var caKeyAlgorithm: SignatureAlgorithm
        /// Where users reach the proxy's SSH side (`host:port`), if this cluster has one: its
        /// host certificate's name in the `@cert-authority` lines logins hand out.
        public var proxySSHAddress: String?

        public init(clusterName: String, maxSessionTTL: Duration = .seconds(12 * 3600), lockout: LockoutPolicy = LockoutPolicy(),
                    inviteTTL: Duration = .seconds(24 * 3600), passwordIterations: Int = PasswordHash.defaultIterations,
                    caKeyAlgorithm: SignatureAlgorithm = .ecdsaP384, proxySSHAddress: String? = nil) {
            self.clusterName = clusterName
            self.maxSessionTTL = maxSessionTTL
            self.lockout = lockout
            self.inviteTTL = inviteTTL
            self.passwordIterations = passwordIterations
            self.caKeyAlgorithm = caKeyAlgorithm
            self.proxySSHAddress = proxySSHAddress
        }

        /// The names the cluster's host CA is trusted for (`@cert-authority` patterns).
        public var knownHostPatterns: [String] {
            ClusterHostNames.knownHostPatterns(cluster: clusterName, proxySSHAddress: proxySSHAddress)
        }
    }

    public let settings: Settings
    public let userCA: CertificateAuthority
    public let hostCA: CertificateAuthority
    /// Trusted by plain OpenSSH hosts; only the proxy's terminating mode signs with it.
    public let opensshCA: CertificateAuthority
    let backend: Backend
    let crypto: CryptoContext
    let audit: AuditPipeline
    /// Checked for a user that does not exist, so an unknown name costs what a known one does.
    let decoy: PasswordHash
    /// Every PBKDF2 of a login or an enrolment runs here, off the cooperative pool.
    let hashing: PasswordHashing
    /// Signed requests' nonces in their window (shared by copies of this service).
    let requestNonces = RequestNonces()

    public init(settings: Settings, backend: Backend, crypto: CryptoContext, audit: AuditPipeline,
                hashing: PasswordHashing = PasswordHashing()) throws {
        self.settings = settings
        self.hashing = hashing
        self.backend = backend
        self.crypto = crypto
        self.audit = audit
        userCA = CertificateAuthority(kind: .user, clusterName: settings.clusterName, backend: backend, crypto: crypto)
        hostCA = CertificateAuthority(kind: .host, clusterName: settings.clusterName, backend: backend, crypto: crypto)
        opensshCA = CertificateAuthority(kind: .openssh, clusterName: settings.clusterName, backend: backend, crypto: crypto)
        decoy = try PasswordHash(password: Base64.encode(try crypto.randomBytes(24)), iterations: settings.passwordIterations, using: crypto)
    }

    /// Creates the authorities if this is the cluster's first start (the OpenSSH CA also on the
    /// first start after an upgrade), and checks that their keys load (a damaged CA record stops
    /// the start instead of the first login).
    public func start() async throws {
        for authority in [userCA, hostCA, opensshCA] { try await authority.ensureCreated(algorithm: settings.caKeyAlgorithm) }
    }

    static func userKey(_ name: String) throws -> String { try Keyspace.users.key(name) }
    static func roleKey(_ name: String) throws -> String { try Keyspace.roles.key(name) }
    func digestKey(_ namespace: KeyPrefix, _ text: String) throws -> String {
        try namespace.key(Hex.encode(try crypto.digest(.sha256, Array(text.utf8))))
    }

    // MARK: Users

    public struct Invitation: Sendable {
        public var user: String
        public var token: String
        public var expires: Date
    }

    /// Creates a user who must accept the invitation (set a password, enrol TOTP) before logging in.
    public func createUser(_ name: String, roles: [String], traits: [String: [String]] = [:], by actor: EventActor) async throws -> Invitation {
        try User.validate(name: name)
        try Self.validate(traits: traits)
        try await requireRoles(roles)
        let user = User(name: name, roles: roles, traits: traits, createdBy: actor.name)
        guard try await backend.create(try Self.userKey(name), value: try encode(user)) != nil else { throw IdentityError.userExists(name) }
        let invitation = try await invite(name)
        try await audit.record(.userCreated(by: actor, name: name, roles: roles, invitationExpires: invitation.expires))
        return invitation
    }

    public func user(_ name: String) async throws -> User {
        guard let item = try await backend.get(try Self.userKey(name)) else { throw IdentityError.userNotFound(name) }
        return try decode(User.self, item.value, what: "user \"\(name)\"")
    }

    public func users() async throws -> [User] {
        try await backend.range(prefix: Keyspace.users.path).map { try decode(User.self, $0.value, what: $0.key) }.sorted { $0.name < $1.name }
    }

    public func updateUser(_ name: String, roles: [String]? = nil, traits: [String: [String]]? = nil, by actor: EventActor) async throws -> User {
        if let roles { try await requireRoles(roles) }
        if let traits { try Self.validate(traits: traits) }
        let updated = try await modifyUser(name) { user in
            if let roles { user.roles = roles }
            if let traits { user.traits = traits }
        }
        try await audit.record(.userUpdated(by: actor, name: name, roles: updated.roles))
        return updated
    }

    public func deleteUser(_ name: String, by actor: EventActor) async throws {
        guard try await backend.delete(try Self.userKey(name)) else { throw IdentityError.userNotFound(name) }
        try await audit.record(.userDeleted(by: actor, name: name))
    }

    /// Clears the password and second factor and issues a new invitation (lost phone, forgotten
    /// password). The user cannot log in until it is accepted.
    public func resetUser(_ name: String, by actor: EventActor) async throws -> Invitation {
        _ = try await modifyUser(name) { user in
            user.status = .invited
            user.passwordHash = nil
            user.totpSecret = nil
            user.lastTOTPStep = nil
        }
        let invitation = try await invite(name)
        try await audit.record(.userReset(by: actor, name: name, invitationExpires: invitation.expires))
        return invitation
    }

    /// Trait values become certificate principals through `{{internal.logins}}`: they must be login names.
    static func validate(traits: [String: [String]]) throws {
        for (name, values) in traits {
            guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_-".contains($0)) }) else {
                throw IdentityError.invalidName("'\(name.prefix(64))' is not a valid trait name")
            }
            for value in values where value == "*" || !RoleYAML.isValidLogin(value) {
                throw IdentityError.invalidName("'\(value.prefix(64))' is not a valid login name (letters, digits, '.', '_', '-')")
            }
        }
    }

    private func invite(_ name: String) async throws -> Invitation {
        let token = Hex.encode(try crypto.randomBytes(32))
        let expires = Date().addingTimeInterval(TimeInterval(settings.inviteTTL.components.seconds))
        let invite = Invite(user: name, totpSecret: Base64.encode(try TOTP.newSecret(using: crypto)), expires: expires)
        let key = try digestKey(Keyspace.invitations, token)
        _ = try await backend.put(key, value: try encode(invite), expires: expires)
        var previous: String?
        _ = try await modifyUser(name) { user in
            previous = user.pendingInvite
            user.pendingInvite = key
        }
        if let previous { _ = try await backend.delete(previous) }
        return Invitation(user: name, token: token, expires: expires)
    }

    /// Changes a user only if `change` says so; nil when it declined.
    func modifyUserIf(_ name: String, _ change: (inout User) throws -> Bool) async throws -> User? {
        for _ in 0..<5 {
            guard let item = try await backend.get(try Self.userKey(name)) else { throw IdentityError.userNotFound(name) }
            var user = try decode(User.self, item.value, what: "user \"\(name)\"")
            guard try change(&user) else { return nil }
            if try await backend.compareAndSwap(try Self.userKey(name), expectedRevision: item.revision, value: try encode(user)) != nil { return user }
        }
        throw IdentityError.conflict("user \"\(name)\"")
    }

    private func modifyUser(_ name: String, _ change: (inout User) throws -> Void) async throws -> User {
        // Never declines, so never nil.
        try await modifyUserIf(name) { user in
            try change(&user)
            return true
        }!
    }

    // MARK: Invitations

    public struct Enrolment: Sendable {
        public var user: String
        public var totpURI: String
        public var totpSecret: String
    }

    /// What the holder of a token needs to enrol: the user name and the TOTP secret.
    public func inspectInvitation(_ token: String) async throws -> Enrolment {
        let (invite, _) = try await loadInvite(token)
        guard let secret = Base64.decode(invite.totpSecret) else { throw IdentityError.corruptRecord("an invitation's TOTP secret") }
        let totp = try TOTP(secret: secret, using: crypto)
        return Enrolment(user: invite.user, totpURI: totp.uri(issuer: "Portcullis \(settings.clusterName)", account: invite.user), totpSecret: Base32.encode(secret))
    }

    /// Sets the password and enrols TOTP (the code proves the app has the secret); the token is spent.
    public func acceptInvitation(_ token: String, password: String, totpCode: String, now: Date = Date()) async throws {
        let (invite, key) = try await loadInvite(token)
        try PasswordHash.checkPolicy(password)
        guard let secret = Base64.decode(invite.totpSecret) else { throw IdentityError.corruptRecord("an invitation's TOTP secret") }
        guard let step = try TOTP(secret: secret, using: crypto).verify(totpCode, at: now, lastUsedStep: nil) else {
            throw IdentityError.invalidResource("the one-time code does not match: check the authenticator app's clock and enter the current code")
        }
        // Hashed before the token is spent: a refusal for load must not burn the invitation.
        let iterations = settings.passwordIterations, crypto = crypto
        let hash = try await hashing.run { try PasswordHash(password: password, iterations: iterations, using: crypto) }
        // Spend the token first: of two racing acceptances only one gets past here.
        guard try await backend.delete(key) else { throw IdentityError.inviteInvalid }
        let accepted = try await modifyUserIf(invite.user) { user in
            // A token replaced by a later invitation (a reset) is no longer the user's.
            guard user.pendingInvite == key else { return false }
            user.pendingInvite = nil
            user.passwordHash = hash
            user.totpSecret = invite.totpSecret
            user.lastTOTPStep = step
            user.status = .active
            return true
        }
        guard accepted != nil else { throw IdentityError.inviteInvalid }
        try await audit.record(.userEnrolled(invite.user))
    }

    private func loadInvite(_ token: String) async throws -> (Invite, String) {
        guard token.utf8.count == 64, token.allSatisfy(\.isHexDigit) else { throw IdentityError.inviteInvalid }
        let key = try digestKey(Keyspace.invitations, token)
        guard let item = try await backend.get(key) else { throw IdentityError.inviteInvalid }
        let invite = try decode(Invite.self, item.value, what: "an invitation")
        guard invite.expires > Date() else { throw IdentityError.inviteInvalid }
        return (invite, key)
    }

    // MARK: Roles

    public func role(_ name: String) async throws -> Role {
        guard let item = try await backend.get(try Self.roleKey(name)) else { throw IdentityError.roleNotFound(name) }
        return try decode(Role.self, item.value, what: "role \"\(name)\"")
    }

    public func roles() async throws -> [Role] { try await Self.storedRoles(in: backend) }

    /// The roles kept in `backend`, by name: for readers without a running service (reports).
    public static func storedRoles(in backend: Backend) async throws -> [Role] {
        try await backend.range(prefix: Keyspace.roles.path).map { item in
            do { return try JSONDecoder().decode(Role.self, from: Data(item.value)) } catch {
                throw IdentityError.corruptRecord("\(item.key) does not decode: \(error)")
            }
        }.sorted { $0.name < $1.name }
    }

    /// Creates or replaces a role. Returns whether it was new.
    @discardableResult
    public func putRole(_ role: Role, by actor: EventActor) async throws -> Bool {
        let existed = try await backend.get(try Self.roleKey(role.name)) != nil
        _ = try await backend.put(try Self.roleKey(role.name), value: try encode(role))
        try await audit.record(.rolePut(by: actor, name: role.name, created: !existed))
        return !existed
    }

    public func deleteRole(_ name: String, by actor: EventActor) async throws {
        let holders = try await users().filter { $0.roles.contains(name) }.map(\.name)
        guard holders.isEmpty else { throw IdentityError.roleInUse(role: name, users: holders) }
        guard try await backend.delete(try Self.roleKey(name)) else { throw IdentityError.roleNotFound(name) }
        try await audit.record(.roleDeleted(by: actor, name: name))
    }

    private func requireRoles(_ names: [String]) async throws {
        guard !names.isEmpty else { throw IdentityError.invalidResource("a user needs at least one role") }
        for name in names where try await backend.get(try Self.roleKey(name)) == nil { throw IdentityError.roleNotFound(name) }
    }

    /// The access checker for a user's current roles.
    public func accessChecker(for user: User) async throws -> AccessChecker {
        AccessChecker(user: user.name, roles: try await user.roles.asyncMap { try await role($0) }, traits: user.traits)
    }

    // MARK: Coding

    func encode<T: Encodable>(_ value: T) throws -> [UInt8] { [UInt8](try JSONEncoder().encode(value)) }

    func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], what: String) throws -> T {
        do { return try JSONDecoder().decode(type, from: Data(bytes)) } catch {
            throw IdentityError.corruptRecord("\(what) does not decode: \(error)")
        }
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        out.reserveCapacity(count)
        for element in self { out.append(try await transform(element)) }
        return out
    }
}

extension IdentityService {
    /// A host certificate for a server's own key (an OpenSSH host behind the proxy, or this
    /// appliance's host key), recorded as `cert.create`.
    public func signHost(_ key: PublicKey, principals: [String], ttl: Duration, by actor: EventActor) async throws -> SSHCertificate {
        for principal in principals where principal.isEmpty || principal.count > 253 || principal.contains(where: { $0.isWhitespace || $0 == "," }) {
            throw IdentityError.invalidName("'\(principal.prefix(64))' is not a host name or address")
        }
        let certificate = try await hostCA.sign(key, keyID: principals.first ?? "host", principals: principals, validFor: ttl)
        try await audit.record(.hostCertificateIssued(by: actor, principals: principals,
                                                      expires: Date(timeIntervalSince1970: TimeInterval(certificate.validBefore)), serial: certificate.serial))
        return certificate
    }
}
