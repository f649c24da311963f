import COpenSSL

public enum KeyAgreementAlgorithm: String, Sendable, CaseIterable {
    case ecdhP256 = "P-256"
    case ecdhP384 = "P-384"
    /// Not approved (NIST IG C.K); refused in FIPS mode.
    case x25519 = "X25519"

    var isApproved: Bool { self != .x25519 }
    var publicKeySize: Int {
        switch self {
        case .ecdhP256: return 65
        case .ecdhP384: return 97
        case .x25519: return 32
        }
    }
}

/// An ephemeral key-agreement key (ECDH on P-256/P-384), as SSH key exchange uses.
public final class KeyAgreementKey: @unchecked Sendable {
    private let pkey: OpaquePointer
    private let crypto: CryptoContext
    public let algorithm: KeyAgreementAlgorithm
    /// The uncompressed SEC1 point (ECDH) or the raw 32 bytes (X25519) to send to the peer.
    public let publicKey: [UInt8]

    public init(generate algorithm: KeyAgreementAlgorithm, using crypto: CryptoContext) throws {
        try crypto.requireApproved(algorithm.isApproved, "X25519 key agreement", hint: "Use ECDH with P-256 or P-384.")
        let generated = algorithm == .x25519
            ? pc_generate_key(crypto.libctx, "X25519", nil)
            : pc_generate_key(crypto.libctx, "EC", algorithm.rawValue)
        guard let generated else { throw OpenSSLErrors.failure("generating a \(algorithm.rawValue) key-agreement key") }
        var point = [UInt8](repeating: 0, count: 133)
        var length = 0
        if algorithm == .x25519 {
            length = point.count
            if EVP_PKEY_get_raw_public_key(generated, &point, &length) != 1 { length = 0 }
        } else {
            length = pc_ec_public_point(generated, &point, point.count)
        }
        guard length == algorithm.publicKeySize else {
            EVP_PKEY_free(generated)
            throw OpenSSLErrors.failure("reading a key-agreement public key")
        }
        pkey = generated
        self.crypto = crypto
        self.algorithm = algorithm
        publicKey = Array(point.prefix(length))
    }

    deinit { EVP_PKEY_free(pkey) }

    /// The shared secret with the peer's public key. A point not on the curve is refused.
    public func sharedSecret<B: Collection<UInt8>>(with peerPublicKey: B) throws -> SymmetricKey {
        let peerBytes = Array(peerPublicKey)
        guard peerBytes.count == algorithm.publicKeySize else {
            throw CryptoError.invalidInput("peer's \(algorithm.rawValue) public key has \(peerBytes.count) bytes, expected \(algorithm.publicKeySize)")
        }
        let peer = algorithm == .x25519
            ? EVP_PKEY_new_raw_public_key_ex(crypto.libctx, "X25519", nil, peerBytes, peerBytes.count)
            : pc_ec_public_from_point(crypto.libctx, algorithm.rawValue, peerBytes, peerBytes.count)
        guard let peer else {
            OpenSSLErrors.clear()
            throw CryptoError.invalidInput("peer's \(algorithm.rawValue) public key is not a valid point")
        }
        defer { EVP_PKEY_free(peer) }
        guard let ctx = EVP_PKEY_CTX_new_from_pkey(crypto.libctx, pkey, nil) else { throw OpenSSLErrors.failure("key agreement") }
        defer { EVP_PKEY_CTX_free(ctx) }
        var length = 0
        guard EVP_PKEY_derive_init(ctx) == 1, EVP_PKEY_derive_set_peer(ctx, peer) == 1,
              EVP_PKEY_derive(ctx, nil, &length) == 1
        else { throw OpenSSLErrors.failure("\(algorithm.rawValue) key agreement") }
        var secret = [UInt8](repeating: 0, count: length)
        defer { wipe(&secret) }
        guard EVP_PKEY_derive(ctx, &secret, &length) == 1 else { throw OpenSSLErrors.failure("\(algorithm.rawValue) key agreement") }
        return SymmetricKey(bytes: secret.prefix(length))
    }
}
