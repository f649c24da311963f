import COpenSSL

/// Secret key bytes kept in memory we own and wipe (`OPENSSL_cleanse`) when the key is released,
/// so a key does not linger in freed heap after use.
public final class SymmetricKey: @unchecked Sendable {
    private let storage: UnsafeMutableRawBufferPointer
    public let count: Int

    public init<B: Collection<UInt8>>(bytes: B) {
        count = bytes.count
        storage = .allocate(byteCount: max(bytes.count, 1), alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        _ = storage.initializeMemory(as: UInt8.self, from: bytes)
    }

    /// A fresh random key of `byteCount` bytes from the context's DRBG.
    public convenience init(random byteCount: Int, using crypto: CryptoContext) throws {
        var bytes = try crypto.randomBytes(byteCount)
        self.init(bytes: bytes)
        wipe(&bytes)
    }

    deinit {
        OPENSSL_cleanse(storage.baseAddress, storage.count)
        storage.deallocate()
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(rebasing: storage[0..<count]))
    }

    /// Constant-time comparison.
    public func isEqual(to other: SymmetricKey) -> Bool {
        guard count == other.count else { return false }
        return withUnsafeBytes { a in other.withUnsafeBytes { b in CRYPTO_memcmp(a.baseAddress, b.baseAddress, a.count) == 0 } }
    }
}

/// Overwrites secret bytes with zeros in a way the optimiser cannot remove.
public func wipe(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { wipe($0) }
}

public func wipe(_ bytes: UnsafeMutableRawBufferPointer) {
    OPENSSL_cleanse(bytes.baseAddress, bytes.count)
}
