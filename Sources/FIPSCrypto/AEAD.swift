import COpenSSL

public enum AEADAlgorithm: String, Sendable, CaseIterable {
    case aes128GCM = "AES-128-GCM"
    case aes256GCM = "AES-256-GCM"
    /// Not approved; refused in FIPS mode.
    case chacha20Poly1305 = "ChaCha20-Poly1305"

    public var keySize: Int { self == .aes128GCM ? 16 : 32 }
    public static let nonceSize = 12
    public static let tagSize = 16

    var isApproved: Bool { self != .chacha20Poly1305 }
}

extension CryptoContext {
    /// Encrypts and authenticates `plaintext`, also authenticating `associatedData`.
    /// Returns ciphertext followed by the 16-byte tag. The nonce must never repeat under one key.
    public func seal<P: Collection<UInt8>, A: Collection<UInt8>>(
        _ plaintext: P, key: SymmetricKey, nonce: [UInt8], associatedData: A, algorithm: AEADAlgorithm = .aes256GCM
    ) throws -> [UInt8] {
        try AEADKey(algorithm, key: key, using: self).seal(plaintext, nonce: nonce, associatedData: associatedData)
    }

    /// Checks the tag and decrypts what `seal` produced. Any change to the ciphertext, tag, nonce,
    /// associated data or key gives `CryptoError.authenticationFailed`.
    public func open<C: Collection<UInt8>, A: Collection<UInt8>>(
        _ sealed: C, key: SymmetricKey, nonce: [UInt8], associatedData: A, algorithm: AEADAlgorithm = .aes256GCM
    ) throws -> [UInt8] {
        try AEADKey(algorithm, key: key, using: self).open(sealed, nonce: nonce, associatedData: associatedData)
    }

    fileprivate func aeadCipher(_ algorithm: AEADAlgorithm) throws -> (cipher: OpaquePointer, owned: Bool) {
        try requireApproved(algorithm.isApproved, algorithm.rawValue, hint: "Use AES-256-GCM or AES-128-GCM.")
        switch algorithm {
        case .aes128GCM: return (aes128GCM, false)
        case .aes256GCM: return (aes256GCM, false)
        case .chacha20Poly1305:
            guard let cipher = EVP_CIPHER_fetch(libctx, algorithm.rawValue, nil) else {
                throw OpenSSLErrors.failure("fetching \(algorithm.rawValue)")
            }
            return (cipher, true)
        }
    }
}

/// One AEAD key for many messages, as a protocol's record layer uses it (an SSH direction): the
/// key schedule is computed once per direction (encrypt, decrypt) and each message only supplies
/// its nonce. Not thread-safe: one user at a time.
public final class AEADKey {
    private let algorithm: AEADAlgorithm
    private let key: SymmetricKey
    private let cipher: OpaquePointer
    private let ownsCipher: Bool
    private var encryptor: OpaquePointer?
    private var decryptor: OpaquePointer?
    /// Kept so the library context (and the cipher it caches) outlive this key.
    private let crypto: CryptoContext

    public init(_ algorithm: AEADAlgorithm, key: SymmetricKey, using crypto: CryptoContext) throws {
        guard key.count == algorithm.keySize else {
            throw CryptoError.invalidInput("\(algorithm.rawValue) needs a \(algorithm.keySize)-byte key, got \(key.count) bytes")
        }
        (cipher, ownsCipher) = try crypto.aeadCipher(algorithm)
        self.crypto = crypto
        self.algorithm = algorithm
        self.key = key
    }

    deinit {
        if let encryptor { EVP_CIPHER_CTX_free(encryptor) }
        if let decryptor { EVP_CIPHER_CTX_free(decryptor) }
        if ownsCipher { EVP_CIPHER_free(cipher) }
    }

    /// The context for one direction: keyed on first use, then only re-initialised with a nonce.
    private func context(encrypting: Bool, nonce: [UInt8]) throws -> OpaquePointer {
        try nonce.withUnsafeBufferPointer { try context(encrypting: encrypting, nonce: $0) }
    }

    private func context(encrypting: Bool, nonce: UnsafeBufferPointer<UInt8>) throws -> OpaquePointer {
        guard nonce.count == AEADAlgorithm.nonceSize else {
            throw CryptoError.invalidInput("\(algorithm.rawValue) needs a \(AEADAlgorithm.nonceSize)-byte nonce, got \(nonce.count) bytes")
        }
        let existing = encrypting ? encryptor : decryptor
        let ctx: OpaquePointer
        let ok: Int32
        if let existing {
            ctx = existing
            ok = encrypting ? EVP_EncryptInit_ex2(ctx, nil, nil, nonce.baseAddress, nil) : EVP_DecryptInit_ex2(ctx, nil, nil, nonce.baseAddress, nil)
        } else {
            guard let made = EVP_CIPHER_CTX_new() else { throw OpenSSLErrors.failure("\(algorithm.rawValue) context") }
            ctx = made
            if encrypting { encryptor = made } else { decryptor = made }
            ok = key.withUnsafeBytes { k in
                let keyBytes = k.bindMemory(to: UInt8.self).baseAddress
                return encrypting ? EVP_EncryptInit_ex2(ctx, cipher, keyBytes, nonce.baseAddress, nil)
                    : EVP_DecryptInit_ex2(ctx, cipher, keyBytes, nonce.baseAddress, nil)
            }
        }
        guard ok == 1 else { throw OpenSSLErrors.failure("\(algorithm.rawValue) \(encrypting ? "seal" : "open")") }
        return ctx
    }

    /// Ciphertext followed by the 16-byte tag. The nonce must never repeat under this key.
    public func seal<P: Collection<UInt8>, A: Collection<UInt8>>(_ plaintext: P, nonce: [UInt8], associatedData: A) throws -> [UInt8] {
        var failure: Error?
        // Uninitialized output: OpenSSL writes every byte (ciphertext, then the tag).
        let out = [UInt8](unsafeUninitializedCapacity: plaintext.count + AEADAlgorithm.tagSize) { o, initialized in
            do {
                try withContiguous(plaintext) { p in
                    try withContiguous(associatedData) { a in
                        try seal(parts: [UnsafeRawBufferPointer(p)], nonce: nonce, associatedData: UnsafeRawBufferPointer(a),
                                 into: UnsafeMutableRawBufferPointer(o))
                    }
                }
                initialized = o.count
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return out
    }

    /// Seals the concatenation of `parts` straight into `output` (ciphertext, then the tag),
    /// so a protocol can frame a message without first copying it together. `output` must hold
    /// exactly the parts' total plus the tag.
    public func seal(parts: [UnsafeRawBufferPointer], nonce: [UInt8], associatedData: UnsafeRawBufferPointer,
                     into output: UnsafeMutableRawBufferPointer) throws {
        let total = parts.reduce(0) { $0 + $1.count }
        guard output.count == total + AEADAlgorithm.tagSize, let base = output.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            throw CryptoError.invalidInput("\(algorithm.rawValue) seal needs \(total + AEADAlgorithm.tagSize) output bytes, got \(output.count)")
        }
        let ctx = try context(encrypting: true, nonce: nonce)
        var ignored: Int32 = 0
        if associatedData.count > 0 {
            guard EVP_EncryptUpdate(ctx, nil, &ignored, associatedData.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(associatedData.count)) == 1 else {
                throw OpenSSLErrors.failure("\(algorithm.rawValue) seal")
            }
        }
        var written = 0
        for part in parts where part.count > 0 {
            var count: Int32 = 0
            guard EVP_EncryptUpdate(ctx, base + written, &count, part.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(part.count)) == 1 else {
                throw OpenSSLErrors.failure("\(algorithm.rawValue) seal")
            }
            written += Int(count)
        }
        var final: Int32 = 0
        guard EVP_EncryptFinal_ex(ctx, base + written, &final) == 1 else { throw OpenSSLErrors.failure("\(algorithm.rawValue) seal") }
        written += Int(final)
        guard written == total, EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, Int32(AEADAlgorithm.tagSize), base + written) == 1 else {
            throw OpenSSLErrors.failure("\(algorithm.rawValue) seal")
        }
    }

    /// Checks the tag and decrypts; any change to ciphertext, tag, nonce, associated data or key
    /// gives `CryptoError.authenticationFailed`.
    public func open<C: Collection<UInt8>, A: Collection<UInt8>>(_ sealed: C, nonce: [UInt8], associatedData: A) throws -> [UInt8] {
        var out: [UInt8] = []
        try withContiguous(sealed) { s in
            try withContiguous(associatedData) { a in
                try nonce.withUnsafeBufferPointer { n in try open(s, nonce: n, associatedData: a, appendingTo: &out) }
            }
        }
        return out
    }

    /// The same, decrypted onto the end of `output`: a reader of many values (a report over the
    /// audit log) then allocates nothing per value, and its generic-free call is not looked up at
    /// run time. On failure `output` is as it was (no byte of an unauthenticated value stays).
    public func open(_ sealed: UnsafeBufferPointer<UInt8>, nonce: UnsafeBufferPointer<UInt8>, associatedData: UnsafeBufferPointer<UInt8>,
                     appendingTo output: inout [UInt8]) throws {
        guard sealed.count >= AEADAlgorithm.tagSize else { throw CryptoError.authenticationFailed }
        let ctx = try context(encrypting: false, nonce: nonce)
        let bodyCount = sealed.count - AEADAlgorithm.tagSize
        let start = output.count
        // At least one byte, so the output pointer is never nil; trimmed to `bodyCount` below.
        appendZeros(max(bodyCount, 1), to: &output)
        var written: Int32 = 0
        var setupFailed = false
        let authentic: Bool = output.withUnsafeMutableBufferPointer { all in
            let o = all.baseAddress! + start
            if associatedData.count > 0 {
                var ignored: Int32 = 0
                guard EVP_DecryptUpdate(ctx, nil, &ignored, associatedData.baseAddress, Int32(associatedData.count)) == 1 else { setupFailed = true; return false }
            }
            if bodyCount > 0 {
                guard EVP_DecryptUpdate(ctx, o, &written, sealed.baseAddress, Int32(bodyCount)) == 1 else { setupFailed = true; return false }
            }
            let tag = UnsafeMutableRawPointer(mutating: sealed.baseAddress! + bodyCount)
            guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, Int32(AEADAlgorithm.tagSize), tag) == 1 else {
                setupFailed = true; return false
            }
            var final: Int32 = 0
            return EVP_DecryptFinal_ex(ctx, o + Int(written), &final) == 1
        }
        guard authentic, !setupFailed else {
            for index in start..<output.count { output[index] = 0 }
            output.removeSubrange(start...)
            if setupFailed { throw OpenSSLErrors.failure("\(algorithm.rawValue) open") }
            OpenSSLErrors.clear()
            throw CryptoError.authenticationFailed
        }
        if bodyCount == 0 { output.removeLast() }
    }
}

/// `count` zero bytes onto the end of `bytes`, copied a page at a time (appending a repeated
/// element goes element by element: it was a tenth of the time of reading the audit log).
private func appendZeros(_ count: Int, to bytes: inout [UInt8]) {
    var remaining = count
    while remaining > 0 {
        let chunk = min(remaining, zeroPage.count)
        bytes.append(contentsOf: zeroPage[0..<chunk])
        remaining -= chunk
    }
}

private let zeroPage = [UInt8](repeating: 0, count: 4096)
