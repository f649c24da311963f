import FIPSCrypto
import Logging
import NIOCore

/// The transport layer of one server connection (RFC 4253): version exchange, key exchange and
/// re-key, packet protection. It is a plain state machine: bytes in, bytes out, and service
/// messages (user authentication, connection) handed to `deliver`. The NIO handler drives it.
final class SSHServerTransport {
    static let softwareVersion = "SSH-2.0-Portcullis_0.1"

    struct Configuration {
        var crypto: CryptoContext
        var algorithms: SSHAlgorithms
        var hostKeys: [PrivateKey]
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
        /// Our KEXINIT is sent (its payload kept for the hash); the peer's may have arrived.
        case exchanging(ours: ByteBuffer, theirs: ByteBuffer?, negotiated: NegotiatedAlgorithms?)
        /// ECDH reply and NEWKEYS sent; waiting for the peer's NEWKEYS to switch inbound keys.
        case awaitingNewKeys(inbound: PacketProtection)
    }

    private let configuration: Configuration
    private var phase = Phase.awaitingVersion
    private var kex = KexState.idle
    private var inbound: PacketProtection
    private var outbound: PacketProtection
    private var inboundBuffer = ByteBufferAllocator().buffer(capacity: 4096)
    private var clientVersion = ""
    private(set) var sessionID: [UInt8]?
    private var strictKex = false
    /// Packets that arrived before the client's first KEXINIT: strict KEX requires none.
    private var packetsBeforeKexInit = 0
    private var clientWantsExtInfo = false
    private var initialKexDone = false
    /// Service messages written while keys change wait here; none is dropped. A peer that never
    /// finishes a key exchange must not make this grow without bound.
    private var pendingOutbound: [ByteBuffer] = []
    private var pendingOutboundBytes = 0
    static let maximumPendingBytes = 32 << 20
    private(set) var bytesSinceKex = 0
    /// OpenSSH clients refuse a KEXINIT while they authenticate, so the server starts re-keys
    /// only once the connection layer runs (client-initiated re-keys are served at any time).
    var serverRekeyAllowed = false
    private(set) var keyExchanges = 0

    /// Called with every byte string to send to the peer, in order.
    var write: (ByteBuffer) -> Void = { _ in }
    /// Called with each service-layer message (userauth, connection) as it arrives.
    var deliver: (ByteBuffer) throws -> Void = { _ in }

    init(configuration: Configuration) {
        self.configuration = configuration
        inbound = PacketProtection(plaintextUsing: configuration.crypto)
        outbound = PacketProtection(plaintextUsing: configuration.crypto)
    }

    /// Sends our version line and our KEXINIT (the server speaks first, RFC 4253 §4.2).
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

    /// Starts a re-key now (server-initiated, e.g. after a data limit).
    func rekey() throws {
        guard case .idle = kex, initialKexDone, serverRekeyAllowed else { return }
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
        guard line.hasPrefix("SSH-2.0-") || line.hasPrefix("SSH-1.99-") else {
            throw SSHError.protocolError("not an SSH-2.0 client (got \"\(line.prefix(40))\")")
        }
        guard line.allSatisfy({ $0.isASCII && ($0 == " " || !$0.isWhitespace) }) else { throw SSHError.protocolError("invalid characters in the version line") }
        clientVersion = line
        return true
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
        case MessageNumber.kexECDHInit.rawValue: try receiveECDHInit(payload)
        case MessageNumber.newKeys.rawValue: try receiveNewKeys()
        case MessageNumber.disconnect.rawValue: phase = .closed; throw SSHError(.connectionLost, "the client disconnected")
        case MessageNumber.ignore.rawValue, MessageNumber.debug.rawValue, MessageNumber.unimplemented.rawValue: return
        default:
            if case .awaitingNewKeys = kex { throw SSHError.protocolError("message \(number) before NEWKEYS") }
            if case .exchanging(_, .some, _) = kex {
                throw SSHError.protocolError("message \(number) during key exchange after the client's KEXINIT")
            }
            try deliver(payload)
        }
    }

    // MARK: Key exchange

    private func beginKeyExchange() throws {
        var names = configuration.algorithms.keyExchange
        if sessionID == nil { names.append(KexInit.strictKexServer) }
        let hostKeyNames = configuration.algorithms.hostKeys.filter { name in configuration.hostKeys.contains { $0.algorithm.rawValue == name } }
        let ours = KexInit(cookie: try configuration.crypto.randomBytes(16), keyExchange: names, hostKeys: hostKeyNames,
                           ciphers: configuration.algorithms.ciphers)
        var payload = ByteBufferAllocator().buffer(capacity: 512)
        ours.write(to: &payload)
        try sendPacket(payload)
        kex = .exchanging(ours: payload, theirs: nil, negotiated: nil)
    }

    private func receiveKexInit(_ payload: ByteBuffer) throws {
        var parse = payload
        let theirs = try KexInit(parsing: &parse)
        if case .idle = kex { try beginKeyExchange() }   // client-initiated re-key
        guard case .exchanging(let oursPayload, nil, _) = kex else {
            throw SSHError.protocolError("unexpected KEXINIT during a key exchange")
        }
        var oursParse = oursPayload
        let ours = try KexInit(parsing: &oursParse)
        if sessionID == nil {
            strictKex = theirs.keyExchange.contains(KexInit.strictKexClient)
            // Terrapin countermeasure: under strict KEX the KEXINIT must be the very first packet.
            // Which mode applies is only known now, so count what came before it.
            if strictKex && packetsBeforeKexInit > 0 {
                throw SSHError.protocolError("strict key exchange: KEXINIT was not the first packet (\(packetsBeforeKexInit) came before it)")
            }
            clientWantsExtInfo = theirs.keyExchange.contains(KexInit.extInfoClient)
        }
        let negotiated = try Negotiation.negotiate(client: theirs, server: ours)
        if theirs.firstKexPacketFollows && theirs.keyExchange.first != negotiated.keyExchange.rawValue {
            throw SSHError(.keyExchangeFailed, "the client guessed a key exchange packet for an algorithm not negotiated")
        }
        configuration.logger.debug("key exchange", metadata: [
            "kex": "\(negotiated.keyExchange.rawValue)", "hostkey": "\(negotiated.hostKey.rawValue)",
            "cipher": "\(negotiated.clientToServer.rawValue)/\(negotiated.serverToClient.rawValue)", "strict": "\(strictKex)",
        ])
        kex = .exchanging(ours: oursPayload, theirs: payload, negotiated: negotiated)
    }

    private func receiveECDHInit(_ payload: ByteBuffer) throws {
        guard case .exchanging(let ours, .some(let theirs), .some(let negotiated)) = kex else {
            throw SSHError.protocolError("KEX_ECDH_INIT before KEXINIT")
        }
        var message = payload
        message.moveReaderIndex(forwardBy: 1)
        guard let clientPublic = message.readSSHBytes(), message.readableBytes == 0 else { throw SSHError.malformed("KEX_ECDH_INIT") }
        let crypto = configuration.crypto
        guard let hostKey = configuration.hostKeys.first(where: { $0.algorithm == negotiated.hostKey }) else {
            throw SSHError(.keyExchangeFailed, "no host key for \(negotiated.hostKey.rawValue)")
        }
        let ephemeral = try KeyAgreementKey(generate: negotiated.keyExchange.curve, using: crypto)
        let secret: SymmetricKey
        do { secret = try ephemeral.sharedSecret(with: clientPublic) } catch {
            throw SSHError(.keyExchangeFailed, "the client's ECDH public key is invalid: \(error)")
        }
        let hostKeyBlob = try hostKey.publicKey.sshWire
        let transcript = KeyExchange.Transcript(clientVersion: clientVersion, serverVersion: Self.softwareVersion,
                                                clientKexInit: theirs, serverKexInit: ours)
        let h = try KeyExchange.exchangeHash(negotiated.keyExchange, transcript, hostKey: hostKeyBlob, clientPublic: clientPublic,
                                             serverPublic: ephemeral.publicKey, sharedSecret: secret, crypto: crypto)
        let sessionID = self.sessionID ?? h
        let keys = try KeyExchange.deriveKeys(negotiated.keyExchange, negotiated: negotiated, sharedSecret: secret,
                                              exchangeHash: h, sessionID: sessionID, crypto: crypto)
        let signature = try hostKey.sshSignature(for: h)
        try sendPacket(.message(.kexECDHReply) {
            $0.writeSSHString(hostKeyBlob)
            $0.writeSSHString(ephemeral.publicKey)
            $0.writeSSHString(signature)
        })
        try sendPacket(.message(.newKeys))
        outbound = keys.serverToClient
        self.sessionID = sessionID
        kex = .awaitingNewKeys(inbound: keys.clientToServer)
        if !initialKexDone && clientWantsExtInfo {
            // RFC 8308: right after our first NEWKEYS.
            try sendPacket(.message(.extInfo) {
                $0.writeInteger(UInt32(1))
                $0.writeSSHString("server-sig-algs")
                $0.writeNameList(SSHAlgorithms.hostKeys)
            })
        }
    }

    private func receiveNewKeys() throws {
        guard case .awaitingNewKeys(let next) = kex else { throw SSHError.protocolError("NEWKEYS out of order") }
        inbound = next
        kex = .idle
        initialKexDone = true
        keyExchanges += 1
        bytesSinceKex = 0
        configuration.logger.debug("new keys in use", metadata: ["key_exchanges": "\(keyExchanges)"])
        let queued = pendingOutbound
        pendingOutbound = []
        pendingOutboundBytes = 0
        for message in queued { try sendPacket(message) }
    }
}
