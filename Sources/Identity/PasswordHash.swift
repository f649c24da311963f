import FIPSCrypto

/// A stored password: PBKDF2-HMAC-SHA-512 (SP 800-132) with a random 32-byte salt. Encoded as
/// `pbkdf2-sha512$<iterations>$<salt b64>$<hash b64>` so the iteration count can rise later
/// without breaking existing passwords.
public struct PasswordHash: Sendable, Equatable, Codable {
    /// OWASP's 2023 figure for PBKDF2-HMAC-SHA-512; the floor.
    public static let defaultIterations = 210_000
    static let hashLength = 64

    public var iterations: Int
    public var salt: [UInt8]
    public var hash: [UInt8]

    /// Passwords shorter than this are refused (SP 800-63B §5.1.1.2: at least 8; we ask 12).
    public static let minimumLength = 12
    /// Longer passphrases are allowed (63B asks for at least 64), but not unbounded work.
    public static let maximumLength = 1024

    public init(password: String, iterations: Int = defaultIterations, using crypto: CryptoContext) throws {
        try Self.checkPolicy(password)
        self.iterations = iterations
        salt = try crypto.randomBytes(32)
        hash = try crypto.pbkdf2(.sha512, password: Array(password.utf8), salt: salt, iterations: iterations, outputLength: Self.hashLength)
    }

    /// Whether `password` is this one. Takes the same time whatever the answer.
    public func matches(_ password: String, using crypto: CryptoContext) throws -> Bool {
        let bytes = Array(password.utf8.prefix(Self.maximumLength + 1))
        let candidate = try crypto.pbkdf2(.sha512, password: bytes, salt: salt, iterations: iterations, outputLength: hash.count)
        return constantTimeEquals(candidate, hash)
    }

    public static func checkPolicy(_ password: String) throws {
        let length = password.count
        guard length >= minimumLength else { throw IdentityError.weakPassword("a password needs at least \(minimumLength) characters") }
        guard password.utf8.count <= maximumLength else { throw IdentityError.weakPassword("a password can have at most \(maximumLength) bytes") }
    }

    public var encoded: String {
        "pbkdf2-sha512$\(iterations)$\(Base64.encode(salt))$\(Base64.encode(hash))"
    }

    public init(encoded: String) throws {
        let parts = encoded.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "pbkdf2-sha512", let iterations = Int(parts[1]), iterations >= 1000,
              let salt = Base64.decode(String(parts[2])), let hash = Base64.decode(String(parts[3])), salt.count >= 16, hash.count >= 32
        else { throw IdentityError.corruptRecord("a stored password hash is not in the pbkdf2-sha512 format") }
        self.iterations = iterations
        self.salt = salt
        self.hash = hash
    }

    public init(from decoder: Decoder) throws { try self.init(encoded: try decoder.singleValueContainer().decode(String.self)) }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(encoded)
    }
}
