import COpenSSL

public enum SignatureAlgorithm: String, Sendable, CaseIterable, Codable {
    case ecdsaP256 = "ecdsa-sha2-nistp256"
    case ecdsaP384 = "ecdsa-sha2-nistp384"
    /// Not approved by the 3.0 FIPS provider's Security Policy; refused in FIPS mode.
    case ed25519 = "ssh-ed25519"

    /// The SSH key and signature algorithm name.
    public var sshName: String { rawValue }

    var opensslType: String { self == .ed25519 ? "ED25519" : "EC" }
    var group: String? {
        switch self {
        case .ecdsaP256: return "P-256"
        case .ecdsaP384: return "P-384"
        case .ed25519: return nil
        }
    }
    /// The SSH curve identifier (RFC 5656 §6.1).
    var sshCurve: String? {
        switch self {
        case .ecdsaP256: return "nistp256"
        case .ecdsaP384: return "nistp384"
        case .ed25519: return nil
        }
    }
    /// RFC 5656 §6.2.1: the hash follows the curve size.
    public var digest: HashAlgorithm? {
        switch self {
        case .ecdsaP256: return .sha256
        case .ecdsaP384: return .sha384
        case .ed25519: return nil
        }
    }
    var fieldSize: Int {
        switch self {
        case .ecdsaP256: return 32
        case .ecdsaP384: return 48
        case .ed25519: return 32
        }
    }
    var isApproved: Bool { self != .ed25519 }

    init?(sshCurve: String) {
        guard let match = Self.allCases.first(where: { $0.sshCurve == sshCurve }) else { return nil }
        self = match
    }
}

/// An asymmetric private key for signatures, held by OpenSSL in the context's provider.
public final class PrivateKey: @unchecked Sendable {
    let pkey: OpaquePointer
    let crypto: CryptoContext
    public let algorithm: SignatureAlgorithm

    init(pkey: OpaquePointer, algorithm: SignatureAlgorithm, crypto: CryptoContext) {
        self.pkey = pkey
        self.algorithm = algorithm
        self.crypto = crypto
    }

    deinit { EVP_PKEY_free(pkey) }

    /// Generates a new key. In FIPS mode the provider runs its pair-wise consistency test.
    public convenience init(generate algorithm: SignatureAlgorithm, using crypto: CryptoContext) throws {
        try crypto.requireApproved(algorithm.isApproved, "Ed25519", hint: "Use ECDSA with P-256 or P-384.")
        guard let pkey = pc_generate_key(crypto.libctx, algorithm.opensslType, algorithm.group) else {
            throw OpenSSLErrors.failure("generating a \(algorithm.sshName) key")
        }
        self.init(pkey: pkey, algorithm: algorithm, crypto: crypto)
    }

    /// Reads a PKCS#8 DER private key (as written by `pkcs8DER()`).
    public convenience init<D: Collection<UInt8>>(pkcs8DER der: D, using crypto: CryptoContext) throws {
        guard let pkey = withContiguous(der, { pc_private_from_der(crypto.libctx, $0.baseAddress, $0.count) }) else {
            OpenSSLErrors.clear()
            throw CryptoError.invalidInput("not a PKCS#8 private key this build can read")
        }
        guard let algorithm = keyAlgorithm(pkey) else {
            EVP_PKEY_free(pkey)
            throw CryptoError.invalidInput("unsupported private key type (ECDSA P-256/P-384 and Ed25519 are supported)")
        }
        do {
            try crypto.requireApproved(algorithm.isApproved, "Ed25519", hint: "Use ECDSA with P-256 or P-384.")
        } catch {
            EVP_PKEY_free(pkey)
            throw error
        }
        self.init(pkey: pkey, algorithm: algorithm, crypto: crypto)
    }

    /// The private key as PKCS#8 DER. Secret: seal it before it goes anywhere.
    public func pkcs8DER() throws -> SymmetricKey {
        var buffer: UnsafeMutablePointer<UInt8>?
        var length = 0
        guard pc_private_to_der(pkey, &buffer, &length) == 1, let buffer else {
            throw OpenSSLErrors.failure("encoding a private key")
        }
        defer { OPENSSL_cleanse(buffer, length); pc_free(buffer) }
        return SymmetricKey(bytes: UnsafeBufferPointer(start: buffer, count: length))
    }

    public var publicKey: PublicKey {
        get throws {
            switch algorithm {
            case .ed25519:
                var raw = [UInt8](repeating: 0, count: 32)
                var length = raw.count
                guard EVP_PKEY_get_raw_public_key(pkey, &raw, &length) == 1 else { throw OpenSSLErrors.failure("reading a public key") }
                return try PublicKey(algorithm: algorithm, keyData: raw, using: crypto)
            case .ecdsaP256, .ecdsaP384:
                var point = [UInt8](repeating: 0, count: 133)
                let length = pc_ec_public_point(pkey, &point, point.count)
                guard length > 0 else { throw OpenSSLErrors.failure("reading a public key") }
                return try PublicKey(algorithm: algorithm, keyData: point.prefix(length), using: crypto)
            }
        }
    }

    /// Signs `data`: a DER ECDSA-Sig-Value for ECDSA (hashing with the curve's SHA-2), the raw
    /// 64-byte signature for Ed25519.
    public func signature<D: Collection<UInt8>>(for data: D) throws -> [UInt8] {
        guard let md = EVP_MD_CTX_new() else { throw OpenSSLErrors.failure("signing") }
        defer { EVP_MD_CTX_free(md) }
        guard EVP_DigestSignInit_ex(md, nil, algorithm.digest?.rawValue, crypto.libctx, nil, pkey, nil) == 1 else {
            throw OpenSSLErrors.failure("\(algorithm.sshName) signing")
        }
        var length = 0
        let ok = withContiguous(data) { input -> Bool in
            guard EVP_DigestSign(md, nil, &length, input.baseAddress, input.count) == 1 else { return false }
            return true
        }
        guard ok else { throw OpenSSLErrors.failure("\(algorithm.sshName) signing") }
        var out = [UInt8](repeating: 0, count: length)
        let signed = withContiguous(data) { input in EVP_DigestSign(md, &out, &length, input.baseAddress, input.count) }
        guard signed == 1 else { throw OpenSSLErrors.failure("\(algorithm.sshName) signing") }
        return Array(out.prefix(length))
    }

    /// Signs `data` and encodes the signature as an SSH signature blob (RFC 5656 §3.1.2,
    /// RFC 8709 §6): string algorithm, string signature.
    public func sshSignature<D: Collection<UInt8>>(for data: D) throws -> [UInt8] {
        let raw = try signature(for: data)
        var blob = SSHWireWriter()
        blob.writeString(algorithm.sshName)
        switch algorithm {
        case .ed25519:
            blob.writeString(raw)
        case .ecdsaP256, .ecdsaP384:
            var r = [UInt8](repeating: 0, count: algorithm.fieldSize)
            var s = [UInt8](repeating: 0, count: algorithm.fieldSize)
            guard pc_ecdsa_der_to_rs(raw, raw.count, &r, &s, algorithm.fieldSize) == 1 else {
                throw OpenSSLErrors.failure("encoding an ECDSA signature")
            }
            var inner = SSHWireWriter()
            inner.writeMPInt(unsigned: r)
            inner.writeMPInt(unsigned: s)
            blob.writeString(inner.bytes)
        }
        return blob.bytes
    }
}

/// A public key for verifying signatures.
public final class PublicKey: @unchecked Sendable {
    let pkey: OpaquePointer
    let crypto: CryptoContext
    public let algorithm: SignatureAlgorithm
    /// The uncompressed SEC1 point (ECDSA) or the 32 raw bytes (Ed25519).
    public let keyData: [UInt8]

    init<B: Collection<UInt8>>(algorithm: SignatureAlgorithm, keyData: B, using crypto: CryptoContext) throws {
        try crypto.requireApproved(algorithm.isApproved, "Ed25519", hint: "Use ECDSA with P-256 or P-384.")
        let bytes = Array(keyData)
        let made: OpaquePointer?
        switch algorithm {
        case .ed25519:
            made = bytes.count == 32 ? EVP_PKEY_new_raw_public_key_ex(crypto.libctx, "ED25519", nil, bytes, bytes.count) : nil
        case .ecdsaP256, .ecdsaP384:
            made = bytes.count == 1 + 2 * algorithm.fieldSize && bytes.first == 4
                ? pc_ec_public_from_point(crypto.libctx, algorithm.group, bytes, bytes.count) : nil
        }
        guard let made else {
            OpenSSLErrors.clear()
            throw CryptoError.invalidInput("not a valid \(algorithm.sshName) public key")
        }
        self.pkey = made
        self.algorithm = algorithm
        self.keyData = bytes
        self.crypto = crypto
    }

    deinit { EVP_PKEY_free(pkey) }

    /// Reads the SSH public key encoding (RFC 5656 §3.1, RFC 8709 §4).
    public convenience init<B: Collection<UInt8>>(sshWire: B, using crypto: CryptoContext) throws {
        var reader = SSHWireReader(sshWire)
        let name = try reader.readUTF8()
        guard let algorithm = SignatureAlgorithm(rawValue: name) else {
            throw CryptoError.invalidInput("unsupported SSH public key type '\(name.prefix(64))'")
        }
        if let curve = algorithm.sshCurve {
            guard try reader.readUTF8() == curve else { throw CryptoError.invalidInput("\(name) key with the wrong curve") }
        }
        let keyData = try reader.readString()
        guard reader.isAtEnd else { throw CryptoError.invalidInput("trailing bytes after an SSH public key") }
        try self.init(algorithm: algorithm, keyData: keyData, using: crypto)
    }

    /// Reads an OpenSSH public key line (`ecdsa-sha2-nistp256 AAAA… [comment]`), the inverse of
    /// `authorizedKeyLine`.
    public convenience init(authorizedKeyLine line: String, using crypto: CryptoContext) throws {
        let parts = line.split(whereSeparator: \.isWhitespace)
        guard parts.count >= 2, let wire = Base64.decode(String(parts[1])) else {
            throw CryptoError.invalidInput("expected an OpenSSH public key line such as 'ecdsa-sha2-nistp256 AAAA…'")
        }
        try self.init(sshWire: wire, using: crypto)
        guard algorithm.sshName == parts[0] else { throw CryptoError.invalidInput("the key's type does not match its name '\(parts[0].prefix(64))'") }
    }

    /// The SSH public key encoding: string name, [string curve,] string key.
    public var sshWire: [UInt8] {
        var writer = SSHWireWriter()
        writer.writeString(algorithm.sshName)
        if let curve = algorithm.sshCurve { writer.writeString(curve) }
        writer.writeString(keyData)
        return writer.bytes
    }

    /// `ecdsa-sha2-nistp256 AAAA… comment`, as in authorized_keys.
    public func authorizedKeyLine(comment: String = "") -> String {
        let line = "\(algorithm.sshName) \(Base64.encode(sshWire))"
        return comment.isEmpty ? line : "\(line) \(comment)"
    }

    /// `SHA256:…` as `ssh-keygen -l` prints it.
    public func fingerprint() throws -> String {
        let hash = try crypto.digest(.sha256, sshWire)
        return "SHA256:" + Base64.encode(hash).replacingOccurrences(of: "=", with: "")
    }

    /// Verifies a signature in the form `PrivateKey.signature(for:)` makes. False for a wrong or
    /// malformed signature; never throws for bad signature bytes.
    public func isValidSignature<S: Collection<UInt8>, D: Collection<UInt8>>(_ signature: S, for data: D) -> Bool {
        guard let md = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(md); OpenSSLErrors.clear() }
        guard EVP_DigestVerifyInit_ex(md, nil, algorithm.digest?.rawValue, crypto.libctx, nil, pkey, nil) == 1 else { return false }
        return withContiguous(signature) { sig in
            withContiguous(data) { input in
                EVP_DigestVerify(md, sig.baseAddress, sig.count, input.baseAddress, input.count) == 1
            }
        }
    }

    /// Verifies an SSH signature blob made by this key's algorithm.
    public func isValidSSHSignature<S: Collection<UInt8>, D: Collection<UInt8>>(_ blob: S, for data: D) -> Bool {
        var reader = SSHWireReader(blob)
        guard let name = try? reader.readUTF8(), name == algorithm.sshName,
              let inner = try? reader.readString(), reader.isAtEnd
        else { return false }
        switch algorithm {
        case .ed25519:
            return inner.count == 64 && isValidSignature(inner, for: data)
        case .ecdsaP256, .ecdsaP384:
            var parts = SSHWireReader(inner)
            guard let r = try? parts.readUnsignedMPInt(), let s = try? parts.readUnsignedMPInt(), parts.isAtEnd,
                  r.count <= algorithm.fieldSize, s.count <= algorithm.fieldSize
            else { return false }
            var der = [UInt8](repeating: 0, count: 2 * algorithm.fieldSize + 16)
            var length = 0
            guard pc_ecdsa_rs_to_der(r, r.count, s, s.count, &der, der.count, &length) == 1 else {
                OpenSSLErrors.clear()
                return false
            }
            return isValidSignature(der.prefix(length), for: data)
        }
    }
}

private func keyAlgorithm(_ pkey: OpaquePointer) -> SignatureAlgorithm? {
    if EVP_PKEY_is_a(pkey, "ED25519") == 1 { return .ed25519 }
    guard EVP_PKEY_is_a(pkey, "EC") == 1 else { return nil }
    var name = [CChar](repeating: 0, count: 64)
    guard pc_ec_group_name(pkey, &name, name.count) == 1 else { return nil }
    switch String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) {
    case "prime256v1", "P-256": return .ecdsaP256
    case "secp384r1", "P-384": return .ecdsaP384
    default: return nil
    }
}
