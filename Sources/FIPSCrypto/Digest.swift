import COpenSSL

public enum HashAlgorithm: String, Sendable, CaseIterable {
    case sha256 = "SHA256"
    case sha384 = "SHA384"
    case sha512 = "SHA512"
    /// For HMAC only (HMAC-SHA-1 stays approved, SP 800-131A): RFC 6238 TOTP codes, which
    /// authenticator apps compute with it.
    case sha1 = "SHA1"
    /// Only for interoperability outside FIPS mode (e.g. legacy fingerprints); refused in FIPS mode.
    case md5 = "MD5"

    public var outputSize: Int {
        switch self {
        case .sha256: return 32
        case .sha384: return 48
        case .sha512: return 64
        case .sha1: return 20
        case .md5: return 16
        }
    }

    var isApproved: Bool { self != .md5 }
}

extension CryptoContext {
    public func digest<D: Collection<UInt8>>(_ algorithm: HashAlgorithm, _ data: D) throws -> [UInt8] {
        try requireApproved(algorithm.isApproved, algorithm.rawValue, hint: "Use SHA-256 or a longer SHA-2.")
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = try withDigest(algorithm) { md in
            withContiguous(data) { input in
                out.withUnsafeMutableBufferPointer { EVP_Digest(input.baseAddress, input.count, $0.baseAddress, &length, md, nil) }
            }
        }
        guard ok == 1 else { throw OpenSSLErrors.failure("\(algorithm.rawValue) digest") }
        return Array(out.prefix(Int(length)))
    }

    public func hmac<K: Collection<UInt8>, D: Collection<UInt8>>(_ algorithm: HashAlgorithm, key: K, data: D) throws -> [UInt8] {
        try requireApproved(algorithm.isApproved, "HMAC-\(algorithm.rawValue)", hint: "Use HMAC with SHA-256 or a longer SHA-2.")
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length = 0
        let ok = withContiguous(key) { k in
            withContiguous(data) { d in
                out.withUnsafeMutableBufferPointer {
                    pc_hmac(libctx, algorithm.rawValue, k.baseAddress, k.count, d.baseAddress, d.count, $0.baseAddress, $0.count, &length)
                }
            }
        }
        guard ok == 1 else { throw OpenSSLErrors.failure("HMAC-\(algorithm.rawValue)") }
        return Array(out.prefix(length))
    }
}

/// Calls `body` with a contiguous view of `data`, copying only when the collection is not contiguous.
@inline(__always)
func withContiguous<D: Collection<UInt8>, R>(_ data: D, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
    if let result = try data.withContiguousStorageIfAvailable(body) { return result }
    return try Array(data).withUnsafeBufferPointer(body)
}

/// A digest over data that arrives in pieces (a stream too large to hold, a chain of records).
public final class IncrementalDigest {
    public let algorithm: HashAlgorithm
    private let context: OpaquePointer
    /// Kept so the library context (and its providers) outlive the digest state made from it.
    private let crypto: CryptoContext

    public init(_ algorithm: HashAlgorithm, using crypto: CryptoContext) throws {
        try crypto.requireApproved(algorithm.isApproved, algorithm.rawValue, hint: "Use SHA-256 or a longer SHA-2.")
        guard let context = EVP_MD_CTX_new() else { throw OpenSSLErrors.failure("allocating a digest") }
        self.algorithm = algorithm
        self.context = context
        self.crypto = crypto
        guard try crypto.withDigest(algorithm, { EVP_DigestInit_ex2(context, $0, nil) }) == 1 else {
            throw OpenSSLErrors.failure("\(algorithm.rawValue) digest")
        }
    }

    private init(copying other: IncrementalDigest) throws {
        guard let context = EVP_MD_CTX_new() else { throw OpenSSLErrors.failure("allocating a digest") }
        guard EVP_MD_CTX_copy_ex(context, other.context) == 1 else {
            EVP_MD_CTX_free(context)
            throw OpenSSLErrors.failure("copying a digest")
        }
        algorithm = other.algorithm
        crypto = other.crypto
        self.context = context
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update<D: Collection<UInt8>>(_ data: D) throws {
        guard withContiguous(data, { EVP_DigestUpdate(context, $0.baseAddress, $0.count) }) == 1 else {
            throw OpenSSLErrors.failure("\(algorithm.rawValue) digest")
        }
    }

    /// The digest of everything passed to `update`; the object is spent afterwards.
    public func finalize() throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard out.withUnsafeMutableBufferPointer({ EVP_DigestFinal_ex(context, $0.baseAddress, &length) }) == 1 else {
            throw OpenSSLErrors.failure("\(algorithm.rawValue) digest")
        }
        return Array(out.prefix(Int(length)))
    }
}

extension IncrementalDigest {
    /// An independent digest of everything so far, to continue separately (or throw away).
    public func copy() throws -> IncrementalDigest { try IncrementalDigest(copying: self) }
}
