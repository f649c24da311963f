import FIPSCrypto
import NIOCore

/// The keys one key exchange produces for both directions.
struct SessionKeys {
    var clientToServer: PacketProtection
    var serverToClient: PacketProtection
}

/// ECDH key exchange (RFC 5656 §4) and key derivation (RFC 4253 §7.2), all through FIPSCrypto.
enum KeyExchange {
    struct Transcript {
        var clientVersion: String
        var serverVersion: String
        var clientKexInit: ByteBuffer
        var serverKexInit: ByteBuffer
    }

    /// H = HASH(V_C || V_S || I_C || I_S || K_S || Q_C || Q_S || K), each as string, K as mpint.
    static func exchangeHash(_ method: KeyExchangeMethod, _ t: Transcript, hostKey: [UInt8], clientPublic: [UInt8],
                             serverPublic: [UInt8], sharedSecret: SymmetricKey, crypto: CryptoContext) throws -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: 1024)
        buffer.writeSSHString(t.clientVersion)
        buffer.writeSSHString(t.serverVersion)
        buffer.writeSSHString(t.clientKexInit)
        buffer.writeSSHString(t.serverKexInit)
        buffer.writeSSHString(hostKey)
        buffer.writeSSHString(clientPublic)
        buffer.writeSSHString(serverPublic)
        sharedSecret.withUnsafeBytes { _ = buffer.writeMPInt(unsigned: $0) }
        defer { buffer.withUnsafeMutableReadableBytes { wipe($0) } }
        return try crypto.digest(method.hash, buffer.readableBytesView)
    }

    /// K1 = HASH(K || H || letter || session_id), K(n+1) = HASH(K || H || K1 || … || Kn).
    static func deriveKeys(_ method: KeyExchangeMethod, negotiated: NegotiatedAlgorithms, sharedSecret: SymmetricKey,
                           exchangeHash: [UInt8], sessionID: [UInt8], crypto: CryptoContext) throws -> SessionKeys {
        var encodedSecret = ByteBufferAllocator().buffer(capacity: 64)
        sharedSecret.withUnsafeBytes { _ = encodedSecret.writeMPInt(unsigned: $0) }
        var k = Array(encodedSecret.readableBytesView)
        encodedSecret.withUnsafeMutableReadableBytes { wipe($0) }
        defer { wipe(&k) }

        func derive(_ letter: UInt8, _ length: Int) throws -> [UInt8] {
            var output = try crypto.digest(method.hash, k + exchangeHash + [letter] + sessionID)
            while output.count < length { output += try crypto.digest(method.hash, k + exchangeHash + output) }
            return Array(output.prefix(length))
        }
        var ivC2S = try derive(UInt8(ascii: "A"), 12), ivS2C = try derive(UInt8(ascii: "B"), 12)
        var keyC2S = try derive(UInt8(ascii: "C"), negotiated.clientToServer.keySize)
        var keyS2C = try derive(UInt8(ascii: "D"), negotiated.serverToClient.keySize)
        defer { wipe(&keyC2S); wipe(&keyS2C); wipe(&ivC2S); wipe(&ivS2C) }
        return SessionKeys(
            clientToServer: try PacketProtection(cipher: negotiated.clientToServer, key: SymmetricKey(bytes: keyC2S), iv: ivC2S, crypto: crypto),
            serverToClient: try PacketProtection(cipher: negotiated.serverToClient, key: SymmetricKey(bytes: keyS2C), iv: ivS2C, crypto: crypto))
    }
}
