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
        let cipher = try aeadCipher(algorithm, key: key, nonce: nonce)
        defer { if algorithm == .chacha20Poly1305 { EVP_CIPHER_free(cipher) } }
        guard let ctx = EVP_CIPHER_CTX_new() else { throw OpenSSLErrors.failure("\(algorithm.rawValue) seal") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        var written: Int32 = 0
        var ok = false
        // Uninitialized output: OpenSSL writes every byte (ciphertext, then the tag).
        let out = [UInt8](unsafeUninitializedCapacity: plaintext.count + AEADAlgorithm.tagSize) { o, initialized in
            ok = key.withUnsafeBytes { k in
                withContiguous(plaintext) { p in
                    withContiguous(associatedData) { a in
                        guard EVP_EncryptInit_ex2(ctx, cipher, k.bindMemory(to: UInt8.self).baseAddress, nonce, nil) == 1 else { return false }
                        if a.count > 0 {
                            var ignored: Int32 = 0
                            guard EVP_EncryptUpdate(ctx, nil, &ignored, a.baseAddress, Int32(a.count)) == 1 else { return false }
                        }
                        if p.count > 0 {
                            guard EVP_EncryptUpdate(ctx, o.baseAddress, &written, p.baseAddress, Int32(p.count)) == 1 else { return false }
                        }
                        var final: Int32 = 0
                        guard EVP_EncryptFinal_ex(ctx, o.baseAddress! + Int(written), &final) == 1 else { return false }
                        written += final
                        return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, Int32(AEADAlgorithm.tagSize),
                                                   o.baseAddress! + Int(written)) == 1
                    }
                }
            }
            initialized = ok ? Int(written) + AEADAlgorithm.tagSize : 0
        }
        guard ok, Int(written) == plaintext.count else { throw OpenSSLErrors.failure("\(algorithm.rawValue) seal") }
        return out
    }

    /// Checks the tag and decrypts what `seal` produced. Any change to the ciphertext, tag, nonce,
    /// associated data or key gives `CryptoError.authenticationFailed`.
    public func open<C: Collection<UInt8>, A: Collection<UInt8>>(
        _ sealed: C, key: SymmetricKey, nonce: [UInt8], associatedData: A, algorithm: AEADAlgorithm = .aes256GCM
    ) throws -> [UInt8] {
        guard sealed.count >= AEADAlgorithm.tagSize else { throw CryptoError.authenticationFailed }
        let cipher = try aeadCipher(algorithm, key: key, nonce: nonce)
        defer { if algorithm == .chacha20Poly1305 { EVP_CIPHER_free(cipher) } }
        guard let ctx = EVP_CIPHER_CTX_new() else { throw OpenSSLErrors.failure("\(algorithm.rawValue) open") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        let bodyCount = sealed.count - AEADAlgorithm.tagSize
        // At least one byte, so the output pointer is never nil; trimmed to `bodyCount` below.
        var out = [UInt8](unsafeUninitializedCapacity: max(bodyCount, 1)) { buffer, initialized in
            buffer.initialize(repeating: 0)   // cheap next to decryption; keeps `out` fully initialized for wipe()
            initialized = buffer.count
        }
        var written: Int32 = 0
        var setupFailed = false
        let authentic: Bool = key.withUnsafeBytes { k in
            withContiguous(sealed) { s in
                withContiguous(associatedData) { a in
                    out.withUnsafeMutableBufferPointer { o in
                        guard EVP_DecryptInit_ex2(ctx, cipher, k.bindMemory(to: UInt8.self).baseAddress, nonce, nil) == 1 else {
                            setupFailed = true; return false
                        }
                        if a.count > 0 {
                            var ignored: Int32 = 0
                            guard EVP_DecryptUpdate(ctx, nil, &ignored, a.baseAddress, Int32(a.count)) == 1 else { setupFailed = true; return false }
                        }
                        if bodyCount > 0 {
                            guard EVP_DecryptUpdate(ctx, o.baseAddress, &written, s.baseAddress, Int32(bodyCount)) == 1 else { setupFailed = true; return false }
                        }
                        let tag = UnsafeMutableRawPointer(mutating: s.baseAddress! + bodyCount)
                        guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, Int32(AEADAlgorithm.tagSize), tag) == 1 else {
                            setupFailed = true; return false
                        }
                        var final: Int32 = 0
                        return EVP_DecryptFinal_ex(ctx, o.baseAddress! + Int(written), &final) == 1
                    }
                }
            }
        }
        if setupFailed { throw OpenSSLErrors.failure("\(algorithm.rawValue) open") }
        guard authentic else {
            OpenSSLErrors.clear()
            wipe(&out)
            throw CryptoError.authenticationFailed
        }
        if bodyCount == 0 { out.removeAll() }
        return out
    }

    private func aeadCipher(_ algorithm: AEADAlgorithm, key: SymmetricKey, nonce: [UInt8]) throws -> OpaquePointer {
        try requireApproved(algorithm.isApproved, algorithm.rawValue, hint: "Use AES-256-GCM or AES-128-GCM.")
        guard key.count == algorithm.keySize else {
            throw CryptoError.invalidInput("\(algorithm.rawValue) needs a \(algorithm.keySize)-byte key, got \(key.count) bytes")
        }
        guard nonce.count == AEADAlgorithm.nonceSize else {
            throw CryptoError.invalidInput("\(algorithm.rawValue) needs a \(AEADAlgorithm.nonceSize)-byte nonce, got \(nonce.count) bytes")
        }
        switch algorithm {
        case .aes128GCM: return aes128GCM
        case .aes256GCM: return aes256GCM
        case .chacha20Poly1305:
            guard let cipher = EVP_CIPHER_fetch(libctx, algorithm.rawValue, nil) else {
                throw OpenSSLErrors.failure("fetching \(algorithm.rawValue)")
            }
            return cipher
        }
    }
}
