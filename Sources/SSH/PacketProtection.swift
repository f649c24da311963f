import FIPSCrypto
import NIOCore

/// Binary packet protocol (RFC 4253 §6) for one direction: plaintext before the first NEWKEYS,
/// then AES-GCM as OpenSSH does it (RFC 5647 with the packet length in clear as associated data,
/// a 12-byte nonce whose last 8 bytes count packets).
final class PacketProtection {
    /// OpenSSH's limit; anything larger is refused before it is buffered.
    static let maximumPacketLength = 256 * 1024

    private let crypto: CryptoContext
    private let cipher: CipherMethod?
    /// Keyed once per direction: each packet only sets its nonce.
    private let key: AEADKey?
    private var nonce: [UInt8]
    /// Random bytes for padding, drawn from the DRBG a few KiB at a time: a DRBG call per packet
    /// (a lock, a fork check and a generate in the FIPS provider) cost more than the padding.
    private var paddingPool: [UInt8] = []
    private var paddingPoolUsed = 0
    static let paddingPoolSize = 4096

    /// No protection (before the first key exchange).
    init(plaintextUsing crypto: CryptoContext) {
        self.crypto = crypto
        cipher = nil
        key = nil
        nonce = []
    }

    init(cipher: CipherMethod, key: SymmetricKey, iv: [UInt8], crypto: CryptoContext) throws {
        precondition(key.count == cipher.keySize && iv.count == 12)
        self.crypto = crypto
        self.cipher = cipher
        self.key = try AEADKey(cipher.aead, key: key, using: crypto)
        nonce = iv
    }

    private var blockSize: Int { cipher == nil ? 8 : 16 }
    private var tagSize: Int { cipher == nil ? 0 : AEADAlgorithm.tagSize }

    /// Frames and protects one payload, appending the packet to `out`.
    func seal(_ payload: ByteBuffer, into out: inout ByteBuffer) throws {
        // padding_length byte + payload + padding is a multiple of the block size (the length
        // field counts toward it only in plaintext mode); at least 4 bytes of padding.
        let covered = 1 + payload.readableBytes + (cipher == nil ? 4 : 0)
        var padding = blockSize - covered % blockSize
        if padding < 4 { padding += blockSize }
        let packetLength = 1 + payload.readableBytes + padding
        let paddingBytes = try takePadding(padding)
        out.writeInteger(UInt32(packetLength))
        guard let key else {
            out.writeInteger(UInt8(padding))
            out.writeImmutableBuffer(payload)
            out.writeBytes(paddingBytes)
            return
        }
        // Sealed straight into the output buffer: no copy of the payload on the way.
        var lengthField = UInt32(packetLength).bigEndian
        var paddingLength = UInt8(padding)
        try out.writeWithUnsafeMutableBytes(minimumWritableBytes: packetLength + tagSize) { destination in
            try payload.withUnsafeReadableBytes { body in
                try withUnsafeBytes(of: &paddingLength) { lengthByte in
                    try paddingBytes.withUnsafeBytes { pad in
                        try withUnsafeBytes(of: &lengthField) { aad in
                            try key.seal(parts: [lengthByte, body, pad], nonce: nonce, associatedData: aad,
                                         into: UnsafeMutableRawBufferPointer(rebasing: destination.prefix(packetLength + tagSize)))
                        }
                    }
                }
            }
            return packetLength + tagSize
        }
        advanceNonce()
    }

    /// `count` (at most 2 blocks) random bytes of the pool, refilled when it runs short.
    func takePadding(_ count: Int) throws -> ArraySlice<UInt8> {
        if paddingPool.count - paddingPoolUsed < count {
            paddingPool = try crypto.randomBytes(Self.paddingPoolSize)
            paddingPoolUsed = 0
        }
        defer { paddingPoolUsed += count }
        return paddingPool[paddingPoolUsed..<paddingPoolUsed + count]
    }

    /// Takes one whole packet off the front of `buffer` and returns its payload; nil when the
    /// packet has not fully arrived. Throws on a bad length, padding or tag.
    func open(from buffer: inout ByteBuffer) throws -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        let packetLength = Int(length)
        guard packetLength >= 5 + (cipher == nil ? 0 : 11), packetLength <= Self.maximumPacketLength else {
            throw SSHError.protocolError("packet length \(packetLength) is out of bounds (max \(Self.maximumPacketLength))")
        }
        guard (packetLength + (cipher == nil ? 4 : 0)) % blockSize == 0 else {
            throw SSHError.protocolError("packet length \(packetLength) is not a multiple of the cipher block size")
        }
        guard buffer.readableBytes >= 4 + packetLength + tagSize else { return nil }
        let lengthBytes = buffer.readBytes(length: 4)!
        var body: [UInt8]
        if let key {
            let sealed = buffer.readBytes(length: packetLength + tagSize)!
            do {
                body = try key.open(sealed, nonce: nonce, associatedData: lengthBytes)
            } catch CryptoError.authenticationFailed {
                throw SSHError(.macError, "packet authentication failed (corrupted or forged data)")
            }
            advanceNonce()
        } else {
            body = buffer.readBytes(length: packetLength)!
        }
        let padding = Int(body[0])
        guard padding >= 4, padding < packetLength else { throw SSHError.protocolError("invalid packet padding length \(padding)") }
        var payload = ByteBufferAllocator().buffer(capacity: packetLength - 1 - padding)
        payload.writeBytes(body[1..<(packetLength - padding)])
        return payload
    }

    /// The invocation counter: the nonce's last 8 bytes as a big-endian integer, plus one.
    private func advanceNonce() {
        var index = 11
        while index >= 4 {
            nonce[index] &+= 1
            if nonce[index] != 0 { break }
            index -= 1
        }
    }
}
