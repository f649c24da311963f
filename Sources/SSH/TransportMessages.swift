import NIOCore

/// Message numbers (RFC 4250 §4.1).
enum MessageNumber: UInt8 {
    case disconnect = 1, ignore = 2, unimplemented = 3, debug = 4, serviceRequest = 5, serviceAccept = 6, extInfo = 7
    case kexInit = 20, newKeys = 21
    case kexECDHInit = 30, kexECDHReply = 31
    case userAuthRequest = 50, userAuthFailure = 51, userAuthSuccess = 52, userAuthBanner = 53, userAuthPKOK = 60
    case globalRequest = 80, requestSuccess = 81, requestFailure = 82
    case channelOpen = 90, channelOpenConfirmation = 91, channelOpenFailure = 92, channelWindowAdjust = 93
    case channelData = 94, channelExtendedData = 95, channelEOF = 96, channelClose = 97
    case channelRequest = 98, channelSuccess = 99, channelFailure = 100
}

/// SSH_MSG_KEXINIT (RFC 4253 §7.1). `raw` is the whole payload as received or sent: it is hashed
/// into the exchange hash exactly.
struct KexInit: Equatable {
    var cookie: [UInt8]
    var keyExchange: [String]
    var hostKeys: [String]
    var ciphersClientToServer: [String]
    var ciphersServerToClient: [String]
    var macsClientToServer: [String]
    var macsServerToClient: [String]
    var compressionClientToServer: [String] = ["none"]
    var compressionServerToClient: [String] = ["none"]
    var firstKexPacketFollows = false

    static let strictKexServer = "kex-strict-s-v00@openssh.com"
    static let strictKexClient = "kex-strict-c-v00@openssh.com"
    static let extInfoClient = "ext-info-c"

    init(cookie: [UInt8], keyExchange: [String], hostKeys: [String], ciphers: [String]) {
        self.cookie = cookie
        self.keyExchange = keyExchange
        self.hostKeys = hostKeys
        ciphersClientToServer = ciphers
        ciphersServerToClient = ciphers
        // AES-GCM carries its own authentication; OpenSSH ignores the MAC list then. Offer the
        // approved HMACs so clients whose MAC list is restricted still negotiate.
        macsClientToServer = ["hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "hmac-sha2-256", "hmac-sha2-512"]
        macsServerToClient = macsClientToServer
    }

    init(parsing payload: inout ByteBuffer) throws {
        guard payload.readInteger(as: UInt8.self) == MessageNumber.kexInit.rawValue,
              let cookie = payload.readBytes(length: 16),
              let kex = payload.readNameList(), let host = payload.readNameList(),
              let c2s = payload.readNameList(), let s2c = payload.readNameList(),
              let macC2S = payload.readNameList(), let macS2C = payload.readNameList(),
              let compC2S = payload.readNameList(), let compS2C = payload.readNameList(),
              payload.readNameList() != nil, payload.readNameList() != nil,
              let follows = payload.readSSHBool(), payload.readInteger(as: UInt32.self) != nil
        else { throw SSHError.malformed("KEXINIT") }
        self.cookie = cookie
        keyExchange = kex
        hostKeys = host
        ciphersClientToServer = c2s
        ciphersServerToClient = s2c
        macsClientToServer = macC2S
        macsServerToClient = macS2C
        compressionClientToServer = compC2S
        compressionServerToClient = compS2C
        firstKexPacketFollows = follows
    }

    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(MessageNumber.kexInit.rawValue)
        buffer.writeBytes(cookie)
        for list in [keyExchange, hostKeys, ciphersClientToServer, ciphersServerToClient, macsClientToServer, macsServerToClient,
                     compressionClientToServer, compressionServerToClient, [], []] {
            buffer.writeNameList(list)
        }
        buffer.writeSSHBool(firstKexPacketFollows)
        buffer.writeInteger(UInt32(0))
    }
}

extension ByteBuffer {
    /// A fresh buffer holding one message: the message number, then whatever `body` writes.
    static func message(_ number: MessageNumber, _ body: (inout ByteBuffer) -> Void = { _ in }) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        buffer.writeInteger(number.rawValue)
        body(&buffer)
        return buffer
    }
}
