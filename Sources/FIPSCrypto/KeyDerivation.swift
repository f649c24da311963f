import COpenSSL

extension CryptoContext {
    /// PBKDF2 (SP 800-132). In FIPS mode the provider itself enforces its lower bounds: salt of at
    /// least 16 bytes, at least 1000 iterations, output of at least 14 bytes.
    public func pbkdf2<P: Collection<UInt8>, S: Collection<UInt8>>(
        _ algorithm: HashAlgorithm, password: P, salt: S, iterations: Int, outputLength: Int
    ) throws -> [UInt8] {
        try requireApproved(algorithm.isApproved, "PBKDF2-HMAC-\(algorithm.rawValue)", hint: "Use PBKDF2 with SHA-256 or SHA-512.")
        guard iterations > 0, outputLength > 0 else {
            throw CryptoError.invalidInput("PBKDF2 needs a positive iteration count and output length")
        }
        var out = [UInt8](repeating: 0, count: outputLength)
        let ok = withContiguous(password) { p in
            withContiguous(salt) { s in
                out.withUnsafeMutableBufferPointer {
                    pc_pbkdf2(libctx, algorithm.rawValue, p.baseAddress, p.count, s.baseAddress, s.count,
                              UInt64(iterations), $0.baseAddress, $0.count)
                }
            }
        }
        guard ok == 1 else { throw OpenSSLErrors.failure("PBKDF2-HMAC-\(algorithm.rawValue)") }
        return out
    }

    /// HKDF extract-and-expand (RFC 5869, SP 800-56C).
    public func hkdf<K: Collection<UInt8>, S: Collection<UInt8>, I: Collection<UInt8>>(
        _ algorithm: HashAlgorithm, key: K, salt: S, info: I, outputLength: Int
    ) throws -> [UInt8] {
        try requireApproved(algorithm.isApproved, "HKDF-\(algorithm.rawValue)", hint: "Use HKDF with SHA-256 or a longer SHA-2.")
        guard outputLength > 0, outputLength <= 255 * algorithm.outputSize else {
            throw CryptoError.invalidInput("HKDF output length must be 1…\(255 * algorithm.outputSize) bytes")
        }
        var out = [UInt8](repeating: 0, count: outputLength)
        let ok = withContiguous(key) { k in
            withContiguous(salt) { s in
                withContiguous(info) { i in
                    out.withUnsafeMutableBufferPointer {
                        pc_hkdf(libctx, algorithm.rawValue, k.baseAddress, k.count, s.baseAddress, s.count,
                                i.baseAddress, i.count, $0.baseAddress, $0.count)
                    }
                }
            }
        }
        guard ok == 1 else { throw OpenSSLErrors.failure("HKDF-\(algorithm.rawValue)") }
        return out
    }
}
