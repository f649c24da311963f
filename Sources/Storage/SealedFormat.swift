import FIPSCrypto

/// Where a sealed value belongs. Its label is authenticated with the value, so a ciphertext
/// moved to another place (another backend key, another recording chunk) fails to open.
public struct SealContext: Sendable, Equatable {
    public let label: String

    public init(label: String) { self.label = label }

    public static func backend(_ key: String) -> SealContext { SealContext(label: "backend\u{0}\(key)") }
    static func dataKey(_ id: String) -> SealContext { SealContext(label: "keyring/data-key\u{0}\(id)") }
    static let activeKey = SealContext(label: "keyring/active")
    static func keyUsage(_ id: String) -> SealContext { SealContext(label: "keyring/usage\u{0}\(id)") }
}

/// The on-disk form of a sealed value:
///
///     0x01 | key-id length (1 byte) | key id (ASCII) | nonce (12) | AES-256-GCM ciphertext | tag (16)
///
/// The associated data is "portcullis-seal-v1" 0x00, the context label, 0x00, and the header
/// (version, length, key id), so neither the place nor the key id can be changed unnoticed.
enum SealedFormat {
    static let version: UInt8 = 1
    static let overhead = 2 + AEADAlgorithm.nonceSize + AEADAlgorithm.tagSize

    static func seal<P: Collection<UInt8>>(_ plaintext: P, keyID: String, key: SymmetricKey, context: SealContext,
                                           using crypto: CryptoContext) throws -> [UInt8] {
        let header = [version, UInt8(keyID.utf8.count)] + Array(keyID.utf8)
        let nonce = try crypto.randomBytes(AEADAlgorithm.nonceSize)
        let sealed = try crypto.seal(plaintext, key: key, nonce: nonce,
                                     associatedData: associatedData(header, context), algorithm: .aes256GCM)
        return header + nonce + sealed
    }

    /// The largest sealed form of `plaintextCount` bytes (the key id at its longest).
    static func capacity(plaintextCount: Int) -> Int { overhead + Int(UInt8.max) + plaintextCount }

    /// Seals the concatenation of `parts` straight into `output` (at least `capacity`), with no
    /// copy of the plaintext put together first; returns the sealed length.
    static func seal(parts: [UnsafeRawBufferPointer], keyID: String, key: AEADKey, context: SealContext,
                     using crypto: CryptoContext, into output: UnsafeMutableRawBufferPointer) throws -> Int {
        let header = [version, UInt8(keyID.utf8.count)] + Array(keyID.utf8)
        let nonce = try crypto.randomBytes(AEADAlgorithm.nonceSize)
        let total = parts.reduce(0) { $0 + $1.count }
        let length = header.count + nonce.count + total + AEADAlgorithm.tagSize
        guard output.count >= length else { throw CryptoError.invalidInput("sealing \(total) bytes needs \(length) bytes of room, got \(output.count)") }
        output.copyBytes(from: header)
        UnsafeMutableRawBufferPointer(rebasing: output[header.count...]).copyBytes(from: nonce)
        let body = UnsafeMutableRawBufferPointer(rebasing: output[(header.count + nonce.count)..<length])
        try associatedData(header, context).withUnsafeBytes { try key.seal(parts: parts, nonce: nonce, associatedData: $0, into: body) }
        return length
    }

    /// The key id a sealed value names, or nil if it is not in this format.
    static func keyID(of sealed: [UInt8]) -> String? {
        sealed.withUnsafeBufferPointer { bytes in keyIDRange(of: bytes).map { String(decoding: bytes[$0], as: UTF8.self) } }
    }

    /// Where the key id is in a sealed value (after the version and its length), or nil if it is not in this format.
    static func keyIDRange(of sealed: UnsafeBufferPointer<UInt8>) -> Range<Int>? {
        guard sealed.count >= overhead, sealed[0] == version else { return nil }
        let length = Int(sealed[1])
        guard length > 0, sealed.count >= overhead + length else { return nil }
        let id = 2..<2 + length
        guard sealed[id].allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else { return nil }
        return id
    }

    static func open(_ sealed: [UInt8], key: SymmetricKey, context: SealContext, using crypto: CryptoContext) throws -> [UInt8] {
        guard let id = keyID(of: sealed) else { throw CryptoError.authenticationFailed }
        let headerLength = 2 + id.utf8.count
        let nonce = Array(sealed[headerLength..<headerLength + AEADAlgorithm.nonceSize])
        return try crypto.open(sealed[(headerLength + AEADAlgorithm.nonceSize)...], key: key, nonce: nonce,
                               associatedData: associatedData(sealed[0..<headerLength], context), algorithm: .aes256GCM)
    }

    private static func associatedData<H: Collection<UInt8>>(_ header: H, _ context: SealContext) -> [UInt8] {
        var out: [UInt8] = []
        Array(header).withUnsafeBufferPointer { associatedData($0, context, into: &out) }
        return out
    }

    /// The same bytes into a buffer a reader of many values reuses, copied rather than appended
    /// element by element (a reader of a million values builds a million).
    static func associatedData(_ header: UnsafeBufferPointer<UInt8>, _ context: SealContext, into out: inout [UInt8]) {
        out.removeAll(keepingCapacity: true)
        out.append(contentsOf: associatedDataPrefix)
        var label = context.label
        label.withUTF8 { out.append(contentsOf: $0) }
        out.append(0)
        out.append(contentsOf: header)
    }

    private static let associatedDataPrefix = Array("portcullis-seal-v1".utf8) + [0]
}
