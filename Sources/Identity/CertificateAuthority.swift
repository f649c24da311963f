import FIPSCrypto
import Foundation
import SSH
import Storage
import Synchronization

/// One of the cluster's SSH certificate authorities. Its private keys exist only sealed in the
/// backend and in this process's memory; signing goes through FIPSCrypto.
/// - `user`: what `pcsh login` gets; Portcullis nodes and the proxy trust it.
/// - `host`: node, proxy and OpenSSH host certificates.
/// - `openssh`: user certificates only the proxy's terminating mode mints (a minute long, one
///   login) for plain OpenSSH hosts, which trust this CA alone: a certificate a user holds can
///   then never reach such a host around the proxy's controls.
///
/// Rotation keeps an overlap: `rotate` makes a new key the signer while the old one stays
/// trusted until `retiresAt` (when the last certificate it signed has expired); `completeRotation`
/// (or the passing of `retiresAt`) drops it. `trustedKeys` is what nodes and `pcctl auth export` use.
public struct CertificateAuthority: Sendable {
    public enum Kind: String, Sendable, CaseIterable, Codable {
        case user, host, openssh
        var certificateKind: SSHCertificate.Kind { self == .host ? .host : .user }
    }

    /// The stored form (sealed by the backend as a whole).
    struct Record: Codable, Sendable {
        struct Key: Codable, Sendable {
            var id: String
            var algorithm: SignatureAlgorithm
            var privateKey: String
            var created: Date
            /// Set on a key being rotated out: trusted until then, never used to sign.
            var retiresAt: Date?
        }
        var keys: [Key]
        var activeID: String
    }

    public struct TrustedKey: Sendable {
        public var id: String
        public var publicKey: PublicKey
        public var active: Bool
        public var retiresAt: Date?
    }

    public let kind: Kind
    public let clusterName: String
    let backend: Backend
    let crypto: CryptoContext
    /// Parsed private keys by key id: decoding PKCS#8 cost two thirds of a signing.
    private let parsedKeys = KeyCache()

    final class KeyCache: Sendable {
        let keys = Mutex<[String: PrivateKey]>([:])
    }
    var recordKey: String { get throws { try Keyspace.certificateAuthorities.key(kind.rawValue) } }

    public init(kind: Kind, clusterName: String, backend: Backend, crypto: CryptoContext) {
        self.kind = kind
        self.clusterName = clusterName
        self.backend = backend
        self.crypto = crypto
    }

    /// Creates the authority's first key if it has none (safe to race: one creation wins), then
    /// loads its keys once, so a damaged record is found now.
    public func ensureCreated(algorithm: SignatureAlgorithm = .ecdsaP384) async throws {
        if try await backend.get(try recordKey) == nil {
            let key = try newKey(algorithm)
            _ = try await backend.create(try recordKey, value: [UInt8](try JSONEncoder().encode(Record(keys: [key], activeID: key.id))))
        }
        _ = try await trustedKeys()
    }

    func newKey(_ algorithm: SignatureAlgorithm) throws -> Record.Key {
        guard algorithm == .ecdsaP384 || algorithm == .ecdsaP256 else {
            throw IdentityError.authorityUnavailable("a CA key must be ECDSA P-384 or P-256, not \(algorithm.sshName)")
        }
        let key = try PrivateKey(generate: algorithm, using: crypto)
        let der = try key.pkcs8DER().withUnsafeBytes { Array($0) }
        return Record.Key(id: try Self.keyID(key.publicKey), algorithm: algorithm, privateKey: Base64.encode(der), created: Date(), retiresAt: nil)
    }

    static func keyID(_ key: PublicKey) throws -> String { try key.fingerprint() }

    func load() async throws -> (Record, Item) {
        guard let item = try await backend.get(try recordKey) else {
            throw IdentityError.authorityUnavailable("the \(kind.rawValue) CA has not been created yet (the auth service creates it at its first start)")
        }
        do {
            var record = try JSONDecoder().decode(Record.self, from: Data(item.value))
            let now = Date()
            record.keys.removeAll { ($0.retiresAt.map { $0 <= now }) ?? false }
            return (record, item)
        } catch {
            throw IdentityError.corruptRecord("the \(kind.rawValue) CA record does not decode: \(error)")
        }
    }

    /// The keys to trust now: the active one and any still in their overlap period.
    public func trustedKeys() async throws -> [TrustedKey] {
        let (record, _) = try await load()
        return try record.keys.map { key in
            let privateKey = try privateKey(key)
            return TrustedKey(id: key.id, publicKey: try privateKey.publicKey, active: key.id == record.activeID, retiresAt: key.retiresAt)
        }
    }

    func privateKey(_ key: Record.Key) throws -> PrivateKey {
        if let parsed = parsedKeys.keys.withLock({ $0[key.id] }) { return parsed }
        guard let der = Base64.decode(key.privateKey) else { throw IdentityError.corruptRecord("CA key \(key.id) is not base64") }
        let parsed = try PrivateKey(pkcs8DER: der, using: crypto)
        // The id is the public key's fingerprint: a record altered under the same id is refused.
        guard try Self.keyID(parsed.publicKey) == key.id else { throw IdentityError.corruptRecord("CA key \(key.id) does not match its id") }
        parsedKeys.keys.withLock { $0[key.id] = parsed }
        return parsed
    }

    /// Signs a certificate with the active key.
    public func sign(_ subject: PublicKey, keyID: String, principals: [String], validFor ttl: Duration,
                     extensions: [String: String] = [:], criticalOptions: [String: String] = [:], now: Date = Date()) async throws -> SSHCertificate {
        guard subject.algorithm == .ecdsaP256 || subject.algorithm == .ecdsaP384 else {
            throw IdentityError.certificateRefused("the key must be ECDSA P-256 or P-384 (FIPS 186-5), not \(subject.algorithm.sshName)")
        }
        guard !principals.isEmpty else { throw IdentityError.certificateRefused("there is no login to put in it") }
        let (record, _) = try await load()
        guard let active = record.keys.first(where: { $0.id == record.activeID }) else {
            throw IdentityError.corruptRecord("the \(kind.rawValue) CA has no active key")
        }
        // Backdated a minute for clock skew, as OpenSSH's ssh-keygen -V does not but every CA does.
        let start = UInt64(max(0, now.timeIntervalSince1970 - 60))
        let end = UInt64(now.timeIntervalSince1970) + UInt64(ttl.components.seconds)
        let serial = try crypto.randomBytes(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return try SSHCertificate.issue(for: subject, kind: kind.certificateKind, keyID: keyID, principals: principals, serial: serial,
                                        validAfter: start, validBefore: end, criticalOptions: criticalOptions, extensions: extensions,
                                        signedBy: try privateKey(active), using: crypto)
    }

    /// Starts a rotation: a new key signs from now on; the current one stays trusted for `overlap`
    /// (at least the longest certificate it may have signed).
    public func rotate(overlap: Duration, algorithm: SignatureAlgorithm? = nil) async throws -> TrustedKey {
        let (record, item) = try await load()
        var updated = record
        guard let current = record.keys.firstIndex(where: { $0.id == record.activeID }) else {
            throw IdentityError.corruptRecord("the \(kind.rawValue) CA has no active key")
        }
        let key = try newKey(algorithm ?? record.keys[current].algorithm)
        updated.keys[current].retiresAt = Date().addingTimeInterval(TimeInterval(overlap.components.seconds))
        updated.keys.append(key)
        updated.activeID = key.id
        try await store(updated, over: item)
        return TrustedKey(id: key.id, publicKey: try privateKey(key).publicKey, active: true, retiresAt: nil)
    }

    /// Ends the overlap now: only the active key stays trusted. Returns the ids dropped.
    @discardableResult
    public func completeRotation() async throws -> [String] {
        let (record, item) = try await load()
        var updated = record
        let dropped = record.keys.filter { $0.id != record.activeID }.map(\.id)
        updated.keys.removeAll { $0.id != record.activeID }
        try await store(updated, over: item)
        return dropped
    }

    private func store(_ record: Record, over item: Item) async throws {
        let value = [UInt8](try JSONEncoder().encode(record))
        guard try await backend.compareAndSwap(try recordKey, expectedRevision: item.revision, value: value) != nil else {
            throw IdentityError.conflict("the \(kind.rawValue) CA")
        }
    }

    // MARK: The forms OpenSSH reads

    /// `cert-authority` lines are for hosts: a `TrustedUserCAKeys` file holds plain public keys.
    public static func trustedUserCAKeysLines(_ keys: [TrustedKey], clusterName: String, kind: Kind = .user) -> [String] {
        keys.map { $0.publicKey.authorizedKeyLine(comment: "portcullis \(kind.rawValue) CA \(clusterName) \($0.id)") }
    }

    /// `@cert-authority` known_hosts lines: trust host certificates from this CA for `patterns`.
    public static func knownHostsLines(_ keys: [TrustedKey], patterns: [String]) -> [String] {
        keys.map { "@cert-authority \(patterns.joined(separator: ",")) \($0.publicKey.authorizedKeyLine())" }
    }
}

extension CertificateAuthority {
    public var cryptoContext: CryptoContext { crypto }
}
