import FIPSCrypto
import Storage

/// The audit log's own keys, kept sealed in the state backend: an HMAC-SHA-256 key for the
/// record chain and an ECDSA P-384 key that signs checkpoints (whose public half lets a copy be
/// checked without any secret). Made once; every process opening the store agrees on them.
public struct AuditKeys: Sendable {
    static let hmacRecord = try! Keyspace.auditKeys.key("chain-hmac")
    static let signingRecord = try! Keyspace.auditKeys.key("checkpoint-signing")

    let chainKey: HMACKey
    public let signingKey: PrivateKey

    public static func load(from backend: SealedBackend, crypto: CryptoContext) async throws -> AuditKeys {
        var hmac = try await loadOrCreate(hmacRecord, in: backend) { try crypto.randomBytes(32) }
        defer { wipe(&hmac) }
        var signing = try await loadOrCreate(signingRecord, in: backend) {
            Array(try PrivateKey(generate: .ecdsaP384, using: crypto).pkcs8DER().withUnsafeBytes { Array($0) })
        }
        defer { wipe(&signing) }
        return AuditKeys(chainKey: try HMACKey(.sha256, key: SymmetricKey(bytes: hmac), using: crypto), signingKey: try PrivateKey(pkcs8DER: signing, using: crypto))
    }

    private static func loadOrCreate(_ key: String, in backend: SealedBackend, make: () throws -> [UInt8]) async throws -> [UInt8] {
        if let item = try await backend.get(key) { return item.value }
        var fresh = try make()
        defer { wipe(&fresh) }
        if try await backend.create(key, value: fresh) != nil { return fresh }
        guard let item = try await backend.get(key) else { throw AuditError.keysUnavailable("\(key) vanished while being created") }
        return item.value
    }
}
