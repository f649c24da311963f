import COpenSSL

/// An HMAC key set up once (MAC and digest fetched, key absorbed), for code that authenticates
/// many messages under one key (the audit chain). Each message works on a copy of the keyed
/// context, so one `HMACKey` may be used from several threads.
public final class HMACKey: @unchecked Sendable {
    public let algorithm: HashAlgorithm
    private let template: OpaquePointer
    /// Kept so the library context (and its providers) outlive the keyed context made from it.
    private let crypto: CryptoContext

    public init(_ algorithm: HashAlgorithm, key: SymmetricKey, using crypto: CryptoContext) throws {
        try crypto.requireApproved(algorithm.isApproved, "HMAC-\(algorithm.rawValue)", hint: "Use HMAC with SHA-256 or a longer SHA-2.")
        guard let template = key.withUnsafeBytes({ k in
            pc_hmac_context(crypto.libctx, algorithm.rawValue, k.bindMemory(to: UInt8.self).baseAddress, k.count)
        }) else { throw OpenSSLErrors.failure("HMAC-\(algorithm.rawValue) key") }
        self.algorithm = algorithm
        self.template = template
        self.crypto = crypto
    }

    deinit { EVP_MAC_CTX_free(template) }

    /// The MAC of the concatenation of `parts`.
    public func authenticate(_ parts: [UInt8]...) throws -> [UInt8] {
        guard let context = EVP_MAC_CTX_dup(template) else { throw OpenSSLErrors.failure("HMAC-\(algorithm.rawValue)") }
        defer { EVP_MAC_CTX_free(context) }
        for part in parts {
            guard part.withUnsafeBufferPointer({ EVP_MAC_update(context, $0.baseAddress, $0.count) }) == 1 else {
                throw OpenSSLErrors.failure("HMAC-\(algorithm.rawValue)")
            }
        }
        var out = [UInt8](repeating: 0, count: algorithm.outputSize)
        var length = 0
        guard out.withUnsafeMutableBufferPointer({ EVP_MAC_final(context, $0.baseAddress, &length, $0.count) }) == 1 else {
            throw OpenSSLErrors.failure("HMAC-\(algorithm.rawValue)")
        }
        return Array(out.prefix(length))
    }
}
