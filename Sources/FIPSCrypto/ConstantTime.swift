import COpenSSL

/// Compares secrets (password hashes, one-time codes, token digests) in time that depends only
/// on their length, so a caller cannot learn how many leading bytes matched.
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    if a.isEmpty { return true }
    return a.withUnsafeBytes { x in b.withUnsafeBytes { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, a.count) == 0 } }
}
