import FIPSCrypto
import Logging
import NIOCore

/// The transport layer of one connection (RFC 4253), as server or client: version exchange, key
/// exchange and re-key, packet protection. It is a plain state machine: bytes in, bytes out, and
/// service messages (user authentication, connection) handed to `deliver`. A NIO handler drives it.
final class SSHTransport {
    static let softwareVersion = "SSH-2.0-Portcullis_0.1"

    enum Role {
        case server(hostKeys: [SSHHostKey])
        case client(verifier: SSHHostKeyVerifier)
    }

    struct Configuration {
        var role: Role
        var crypto: CryptoContext
        var algorithms: SSHAlgorithms
        var rekeyAfterBytes: Int
        var logger: Logger
    }

    private enum Phase {
        case awaitingVersion
        case active
        case closed
    }

    private enum KexState {
        case idle
        /// Our KEXINIT is sent (its payload kept for the hash); the peer's may have arrived. A
        /// client has also sent its ECDH public key once both are known.
        case exchanging(ours: ByteBuffer, theirs: ByteBuffer?, negotiated: NegotiatedAlgorithms?, ephemeral: KeyAgreementKey?)
        /// Our NEWKEYS is sent; waiting for the peer's to switch inbound keys.
        case awaitingNewKeys(inbound: PacketProtection)
    }

    private let configuration: Configuration
    private var isServer: Bool { if case .server = configuration.role { true } else { false } }
    private var phase = Phase.awaitingVersion
    private var kex = KexState.idle
    private var inbound: PacketProtection
    private var outbound: PacketProtection
    private var inboundBuffer = ByteBufferAllocator().buffer(capacity: 4096)
    private var peerVersion = ""
    private(set) var sessionID: [UInt8]?
    private var strictKex = false
    /// Packets that arrived before the peer's first KEXINIT: strict KEX requires none.
    private var packetsBeforeKexInit = 0
    private var peerWantsExtInfo = false
    private var initialKexDone = false
    /// The server's host key from the first exchange: a re-key must not change it.
    private(set) var serverHostKey: PresentedHostKey?
    /// Service messages written while keys change wait here; none is dropped. A peer that never
    /// finishes a key exchange must not make this grow without bound.
    private var pendingOutbound: [ByteBuffer] = []
    private var pendingOutboundBytes = 0
    static let maximumPendingBytes = 32 << 20
    private(set) var bytesSinceKex = 0
    /// OpenSSH clients refuse a KEXINIT while they authenticate, so a server starts re-keys only
    /// once the connection layer runs (re-keys the peer starts are served at any time).
    var rekeyAllowed = false
    private(set) var keyExchanges = 0

    /// Called with every byte string to send to the peer, in order.
    var write: (ByteBuffer) -> Void = { _ in }
    /// Called with each service-layer message (userauth, connection) as it arrives.
    var deliver: (ByteBuffer) throws -> Void = { _ in }
    /// Called once the first key exchange completed and service messages can flow.
    var onFirstKeyExchange: () throws -> Void = {}

    init(configuration: Configuration) {
        self.configuration = configuration
        inbound = PacketProtection(plaintextUsing: configuration.crypto)
        outbound = PacketProtection(plaintextUsing: configuration.crypto)
        if !isServer { rekeyAllowed = true }
    }

    /// Sends our version line and our KEXINIT. Both sides may speak first (RFC 4253 §4.2, §7.1).
    func start() throws {
        var line = ByteBufferAllocator().buffer(capacity: 32)
        line.writeString(Self.softwareVersion + "\r\n")
        write(line)
        try beginKeyExchange()
    }

    /// Feeds bytes from the network.
    func receive(_ bytes: inout ByteBuffer) throws {
        inboundBuffer.writeBuffer(&bytes)
        if case .awaitingVersion = phase {
            guard try readVersion() else { return }
            phase = .active
        }
        while case .active = phase, let payload = try inbound.open(from: &inboundBuffer) {
            bytesSinceKex += payload.readableBytes
            try handle(payload)
        }
        inboundBuffer.discardReadBytes()
        try rekeyIfDue()
    }

    /// Sends a service-layer message, holding it back while a key exchange is under way.
    func send(_ payload: ByteBuffer) throws {
        guard case .idle = kex, initialKexDone else {
            pendingOutboundBytes += payload.readableBytes
            guard pendingOutboundBytes <= Self.maximumPendingBytes else {
                throw SSHError(.protocolError, "the key exchange stalled with more than \(Self.maximumPendingBytes >> 20) MiB waiting to be sent")
            }
            pendingOutbound.append(payload)
            return
        }
        try sendPacket(payload)
        try rekeyIfDue()
    }

    private func rekeyIfDue() throws {
        if bytesSinceKex >= configuration.rekeyAfterBytes { try rekey() }
    }

    /// Starts a re-key now (after a data or time limit).
    func rekey() throws {
        guard case .idle = kex, initialKexDone, rekeyAllowed else { return }
        try beginKeyExchange()
    }

    func disconnectPacket(_ error: SSHError) -> ByteBuffer? {
        guard case .active = phase else { return nil }
        let message = ByteBuffer.message(.disconnect) {
            $0.writeInteger(error.reason.rawValue)
            $0.writeSSHString(error.message)
            $0.writeSSHString("")
        }
        var out = ByteBufferAllocator().buffer(capacity: 128)
        try? outbound.seal(message, into: &out)
        phase = .closed
        return out
    }

    // MARK: Version exchange

    private func readVersion() throws -> Bool {
        // A server may send other lines before its version (RFC 4253 §4.2); a client may not.
        while true {
            guard let newline = inboundBuffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
                if inboundBuffer.readableBytes > 255 { throw SSHError.protocolError("no SSH version line in the first 255 bytes") }
                return false
            }
            let length = newline - inboundBuffer.readerIndex + 1
            guard length <= 255, var bytes = inboundBuffer.readBytes(length: length) else {
                throw SSHError.protocolError("SSH version line longer than 255 bytes")
            }
            // Bytes, not Characters: to Swift "\r\n" is a single Character.
            bytes.removeLast()
            if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
            let line = String(decoding: bytes, as: UTF8.self)
            guard line.hasPrefix("SSH-") else {
                if !isServer && inboundBuffer.readerIndex < 8192 { continue }
                throw SSHError.protocolError("not an SSH-2.0 peer (got \"\(line.prefix(40))\")")
            }
            guard line.hasPrefix("SSH-2.0-") || line.hasPrefix("SSH-1.99-") else {
                throw SSHError.protocolError("not an SSH-2.0 peer (got \"\(line.prefix(40))\")")
            }
            guard line.allSatisfy({ $0.isASCII && ($0 == " " || !$0.isWhitespace) }) else { throw SSHError.protocolError("invalid characters in the version line") }
            peerVersion = line
            return true
        }
    }

    // MARK: Packets

    private func sendPacket(_ payload: ByteBuffer) throws {
        var out = ByteBufferAllocator().buffer(capacity: payload.readableBytes + 64)
        try outbound.seal(payload, into: &out)
        bytesSinceKex += payload.readableBytes
        write(out)
    }

    private func handle(_ payload: ByteBuffer) throws {
        guard let number = payload.getInteger(at: payload.readerIndex, as: UInt8.self) else {
            throw SSHError.protocolError("empty packet")
        }
        let kexMessage = number == MessageNumber.kexInit.rawValue || number == MessageNumber.newKeys.rawValue
            || (30...49).contains(number)
        // Strict key exchange (Terrapin countermeasure): during the first exchange only key
        // exchange messages may arrive, starting with KEXINIT.
        if !initialKexDone && (strictKex || sessionID == nil) && !kexMessage {
            if strictKex || number != MessageNumber.ignore.rawValue && number != MessageNumber.debug.rawValue {
                throw SSHError.protocolError("message \(number) is not allowed during the initial key exchange")
            }
            packetsBeforeKexInit += 1
            return
        }
        switch number {
        case MessageNumber.kexInit.rawValue: try receiveKexInit(payload)
        case MessageNumber.kexECDHInit.rawValue where isServer: try receiveECDHInit(payload)
        case MessageNumber.kexECDHReply.rawValue where !isServer: try receiveECDHReply(payload)
        case MessageNumber.newKeys.rawValue: try receiveNewKeys()
        case 30...49: throw SSHError.protocolError("key exchange message \(number) is not valid for this side")
        case MessageNumber.disconnect.rawValue:
            phase = .closed
            var message = payload
            message.moveReaderIndex(forwardBy: 1)
            let code = message.readInteger(as: UInt32.self).flatMap(SSHError.Reason.init(rawValue:)) ?? .connectionLost
            let text = message.readSSHText(limit: 1024) ?? ""
            throw SSHError(.connectionLost, text.isEmpty ? "the peer disconnected" : "the peer disconnected: \(text)", peerReason: code)
        case MessageNumber.ignore.rawValue, MessageNumber.debug.rawValue, MessageNumber.unimplemented.rawValue: return
        case MessageNumber.extInfo.rawValue where !isServer: return   // we sign with ECDSA whatever the server lists
        default:
            if case .awaitingNewKeys = kex { throw SSHError.protocolError("message \(number) before NEWKEYS") }
            if case .exchanging(_, .some, _, _) = kex {
                throw SSHError.protocolError("message \(number) during key exchange after the peer's KEXINIT")
            }
            try deliver(payload)
        }
    }

    // MARK: Key exchange

    private func beginKeyExchange() throws {
        var kexNames = configuration.algorithms.keyExchange
        let hostKeyNames: [String]
        switch configuration.role {
        case .server(let hostKeys):
            if sessionID == nil { kexNames.append(KexInit.strictKexServer) }
            hostKeyNames = hostKeys.filter { configuration.algorithms.hostKeys.contains($0.privateKey.algorithm.sshName) }.map(\.algorithmName)
        case .client:
            if sessionID == nil { kexNames += [KexInit.extInfoClient, KexInit.strictKexClient] }
            hostKeyNames = configuration.algorithms.hostKeys.map { SSHCertificate.algorithmName(for: SignatureAlgorithm(rawValue: $0)!) }
                + configuration.algorithms.hostKeys
        }
        let ours = KexInit(cookie: try configuration.crypto.randomBytes(16), keyExchange: kexNames, hostKeys: hostKeyNames,
                           ciphers: configuration.algorithms.ciphers)
        var payload = ByteBufferAllocator().buffer(capacity: 512)
        ours.write(to: &payload)
        try sendPacket(payload)
        kex = .exchanging(ours: payload, theirs: nil, negotiated: nil, ephemeral: nil)
    }

    private func receiveKexInit(_ payload: ByteBuffer) throws {
        var parse = payload
        let theirs = try KexInit(parsing: &parse)
        if case .idle = kex { try beginKeyExchange() }   // the peer starts a re-key
        guard case .exchanging(let oursPayload, nil, _, _) = kex else {
            throw SSHError.protocolError("unexpected KEXINIT during a key exchange")
        }
        var oursParse = oursPayload
        let ours = try KexInit(parsing: &oursParse)
        if sessionID == nil {
            strictKex = theirs.keyExchange.contains(isServer ? KexInit.strictKexClient : KexInit.strictKexServer)
            // Terrapin countermeasure: under strict KEX the KEXINIT must be the very first packet.
            // Which mode applies is only known now, so count what came before it.
            if strictKex && packetsBeforeKexInit > 0 {
                throw SSHError.protocolError("strict key exchange: KEXINIT was not the first packet (\(packetsBeforeKexInit) came before it)")
            }
            peerWantsExtInfo = isServer && theirs.keyExchange.contains(KexInit.extInfoClient)
        }
        let negotiated = try Negotiation.negotiate(client: isServer ? theirs : ours, server: isServer ? ours : theirs)
        if theirs.firstKexPacketFollows && theirs.keyExchange.first != negotiated.keyExchange.rawValue {
            throw SSHError(.keyExchangeFailed, "the peer guessed a key exchange packet for an algorithm not negotiated")
        }
        configuration.logger.debug("key exchange", metadata: [
            "kex": "\(negotiated.keyExchange.rawValue)", "hostkey": "\(negotiated.hostKeyName)",
            "cipher": "\(negotiated.clientToServer.rawValue)/\(negotiated.serverToClient.rawValue)", "strict": "\(strictKex)",
        ])
        var ephemeral: KeyAgreementKey?
        if !isServer {
            let key = try KeyAgreementKey(generate: negotiated.keyExchange.curve, using: configuration.crypto)
            try sendPacket(.message(.kexECDHInit) { $0.writeSSHString(key.publicKey) })
            ephemeral = key
        }
        kex = .exchanging(ours: oursPayload, theirs: payload, negotiated: negotiated, ephemeral: ephemeral)
    }

    private func transcript(ours: ByteBuffer, theirs: ByteBuffer) -> KeyExchange.Transcript {
        isServer
            ? KeyExchange.Transcript(clientVersion: peerVersion, serverVersion: Self.softwareVersion, clientKexInit: theirs, serverKexInit: ours)
            : KeyExchange.Transcript(clientVersion: Self.softwareVersion, serverVersion: peerVersion, clientKexInit: ours, serverKexInit: theirs)
    }

    private func receiveECDHInit(_ payload: ByteBuffer) throws {
        guard case .exchanging(let ours, .some(let theirs), .some(let negotiated), _) = kex,
              case .server(let hostKeys) = configuration.role
        else { throw SSHError.protocolError("KEX_ECDH_INIT before KEXINIT") }
        var message = payload
        message.moveReaderIndex(forwardBy: 1)
        guard let clientPublic = message.readSSHBytes(), message.readableBytes == 0 else { throw SSHError.malformed("KEX_ECDH_INIT") }
        let crypto = configuration.crypto
        guard let hostKey = hostKeys.first(where: { $0.algorithmName == negotiated.hostKeyName }) else {
            throw SSHError(.keyExchangeFailed, "no host key for \(negotiated.hostKeyName)")
        }
        let ephemeral = try KeyAgreementKey(generate: negotiated.keyExchange.curve, using: crypto)
        let secret: SymmetricKey
        do { secret = try ephemeral.sharedSecret(with: clientPublic) } catch {
            throw SSHError(.keyExchangeFailed, "the client's ECDH public key is invalid: \(error)")
        }
        let hostKeyBlob = hostKey.publicBlob
        let h = try KeyExchange.exchangeHash(negotiated.keyExchange, transcript(ours: ours, theirs: theirs), hostKey: hostKeyBlob,
                                             clientPublic: clientPublic, serverPublic: ephemeral.publicKey, sharedSecret: secret, crypto: crypto)
        let signature = try hostKey.privateKey.sshSignature(for: h)
        try sendPacket(.message(.kexECDHReply) {
            $0.writeSSHString(hostKeyBlob)
            $0.writeSSHString(ephemeral.publicKey)
            $0.writeSSHString(signature)
        })
        try switchKeys(negotiated, secret: secret, exchangeHash: h)
        if !initialKexDone && peerWantsExtInfo {
            // RFC 8308: right after our first NEWKEYS.
            try sendPacket(.message(.extInfo) {
                $0.writeInteger(UInt32(1))
                $0.writeSSHString("server-sig-algs")
                $0.writeNameList(SSHAlgorithms.hostKeys)
            })
        }
    }

    private func receiveECDHReply(_ payload: ByteBuffer) throws {
        guard case .exchanging(let ours, .some(let theirs), .some(let negotiated), .some(let ephemeral)) = kex,
              case .client(let verifier) = configuration.role
        else { throw SSHError.protocolError("KEX_ECDH_REPLY before KEX_ECDH_INIT") }
        var message = payload
        message.moveReaderIndex(forwardBy: 1)
        guard let hostKeyBlob = message.readSSHBytes(), let serverPublic = message.readSSHBytes(),
              let signature = message.readSSHBytes(), message.readableBytes == 0
        else { throw SSHError.malformed("KEX_ECDH_REPLY") }
        let crypto = configuration.crypto
        let presented: PresentedHostKey
        do {
            if SSHCertificate.isCertificateAlgorithm(negotiated.hostKeyName) {
                let certificate = try SSHCertificate(wire: hostKeyBlob, using: crypto)
                presented = PresentedHostKey(key: certificate.key, certificate: certificate)
            } else {
                presented = PresentedHostKey(key: try PublicKey(sshWire: hostKeyBlob, using: crypto), certificate: nil)
            }
        } catch {
            throw SSHError(.hostKeyNotVerifiable, "the server's host key is unusable: \(error)")
        }
        guard presented.key.algorithm == negotiated.hostKey else {
            throw SSHError(.hostKeyNotVerifiable, "the server sent a \(presented.key.algorithm.sshName) key for \(negotiated.hostKeyName)")
        }
        let secret: SymmetricKey
        do { secret = try ephemeral.sharedSecret(with: serverPublic) } catch {
            throw SSHError(.keyExchangeFailed, "the server's ECDH public key is invalid: \(error)")
        }
        let h = try KeyExchange.exchangeHash(negotiated.keyExchange, transcript(ours: ours, theirs: theirs), hostKey: hostKeyBlob,
                                             clientPublic: ephemeral.publicKey, serverPublic: serverPublic, sharedSecret: secret, crypto: crypto)
        guard presented.key.isValidSSHSignature(signature, for: h) else {
            throw SSHError(.hostKeyNotVerifiable, "the server's signature over the key exchange does not verify")
        }
        if let first = serverHostKey {
            guard first.key.sshWire == presented.key.sshWire else { throw SSHError(.hostKeyNotVerifiable, "the server's host key changed during a re-key") }
        }
        if case .reject(let reason, _) = verifier.decide(presented) { throw SSHError(.hostKeyNotVerifiable, reason) }
        serverHostKey = serverHostKey ?? presented
        try switchKeys(negotiated, secret: secret, exchangeHash: h)
    }

    /// Sends NEWKEYS and protects everything after it with the new keys.
    private func switchKeys(_ negotiated: NegotiatedAlgorithms, secret: SymmetricKey, exchangeHash h: [UInt8]) throws {
        let sessionID = self.sessionID ?? h
        let keys = try KeyExchange.deriveKeys(negotiated.keyExchange, negotiated: negotiated, sharedSecret: secret,
                                              exchangeHash: h, sessionID: sessionID, crypto: configuration.crypto)
        try sendPacket(.message(.newKeys))
        outbound = isServer ? keys.serverToClient : keys.clientToServer
        self.sessionID = sessionID
        kex = .awaitingNewKeys(inbound: isServer ? keys.clientToServer : keys.serverToClient)
    }

    private func receiveNewKeys() throws {
        guard case .awaitingNewKeys(let next) = kex else { throw SSHError.protocolError("NEWKEYS out of order") }
        inbound = next
        kex = .idle
        let first = !initialKexDone
        initialKexDone = true
        keyExchanges += 1
        bytesSinceKex = 0
        configuration.logger.debug("new keys in use", metadata: ["key_exchanges": "\(keyExchanges)"])
        let queued = pendingOutbound
        pendingOutbound = []
        pendingOutboundBytes = 0
        for message in queued { try sendPacket(message) }
        if first { try onFirstKeyExchange() }
    }
}
