import FIPSCrypto
import Logging
import NIOCore

/// Everything a server connection needs.
public struct SSHServerConfiguration: Sendable {
    public var crypto: CryptoContext
    public var algorithms: SSHAlgorithms
    public var hostKeys: [PrivateKey]
    public var authenticator: SSHServerAuthenticator
    /// Time allowed from connect to successful authentication.
    public var authenticationTimeout: TimeAmount
    /// The server starts a re-key after this many bytes either way, or this long (RFC 4344 §3.1
    /// asks for a re-key at least every 2^32 packets / once an hour is common hardening).
    public var rekeyAfterBytes: Int
    public var rekeyInterval: TimeAmount?
    /// Makes the handler of each session channel; nil (or returning nil) refuses sessions.
    public var sessionHandlerFactory: (@Sendable (SSHSessionContext, SSHSessionChannel) -> SSHSessionHandler?)?
    public var logger: Logger

    public init(crypto: CryptoContext, algorithms: SSHAlgorithms = .default, hostKeys: [PrivateKey],
                authenticator: SSHServerAuthenticator, authenticationTimeout: TimeAmount = .seconds(60),
                rekeyAfterBytes: Int = 1 << 30, rekeyInterval: TimeAmount? = .hours(1),
                sessionHandlerFactory: (@Sendable (SSHSessionContext, SSHSessionChannel) -> SSHSessionHandler?)? = nil,
                logger: Logger = Logger(label: "portcullis.ssh")) {
        self.crypto = crypto
        self.algorithms = algorithms
        self.hostKeys = hostKeys
        self.authenticator = authenticator
        self.authenticationTimeout = authenticationTimeout
        self.rekeyAfterBytes = rekeyAfterBytes
        self.rekeyInterval = rekeyInterval
        self.sessionHandlerFactory = sessionHandlerFactory
        self.logger = logger
    }
}

/// The NIO side of a server connection: bytes in and out of the transport, authentication, then
/// the connection layer. Any protocol error ends in a DISCONNECT with the reason and a log line.
public final class SSHServerHandler: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let configuration: SSHServerConfiguration
    private var transport: SSHServerTransport!
    private var userAuth: UserAuthenticationServer!
    private var authTimeout: Scheduled<Void>?
    private var rekeyTimer: RepeatedTask?
    private var connection: SSHConnectionLayer?
    private var logger: Logger

    public init(configuration: SSHServerConfiguration) {
        self.configuration = configuration
        logger = configuration.logger
    }

    public func channelActive(context: ChannelHandlerContext) {
        logger[metadataKey: "remote"] = "\(context.remoteAddress.map { "\($0)" } ?? "?")"
        let transport = SSHServerTransport(configuration: .init(crypto: configuration.crypto, algorithms: configuration.algorithms,
                                                                hostKeys: configuration.hostKeys, rekeyAfterBytes: configuration.rekeyAfterBytes,
                                                                logger: logger))
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        transport.write = { bytes in loopBound.value.writeAndFlush(NIOAny(bytes), promise: nil) }
        let userAuth = UserAuthenticationServer(crypto: configuration.crypto, authenticator: configuration.authenticator) { [weak transport] in
            transport?.sessionID
        }
        userAuth.send = { [weak transport] in try transport?.send($0) }
        userAuth.onRejection = { [logger] user, reason in
            logger.notice("authentication refused", metadata: ["user": "\(user)", "reason": "\(reason)"])
        }
        transport.deliver = { [weak self] payload in try self?.deliver(payload, context: loopBound.value) }
        self.transport = transport
        self.userAuth = userAuth
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        authTimeout = context.eventLoop.scheduleTask(in: configuration.authenticationTimeout) {
            guard handler.value.userAuth.authenticatedUser == nil else { return }
            handler.value.fail(SSHError(.byApplication, "authentication timed out"), context: loopBound.value)
        }
        if let interval = configuration.rekeyInterval {
            rekeyTimer = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                do { try handler.value.transport.rekey() } catch { handler.value.fail(error, context: loopBound.value) }
            }
        }
        do { try transport.start() } catch { fail(error, context: context) }
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        authTimeout?.cancel()
        rekeyTimer?.cancel()
        connection?.connectionClosed()
        connection = nil
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        do { try transport.receive(&bytes) } catch { fail(error, context: context) }
    }

    private func deliver(_ payload: ByteBuffer, context: ChannelHandlerContext) throws {
        guard userAuth.authenticatedUser != nil else {
            try userAuth.receive(payload)
            if let user = userAuth.authenticatedUser {
                authTimeout?.cancel()
                transport.serverRekeyAllowed = true
                var metadata: Logger.Metadata = ["user": "\(user)"]
                if let certificate = userAuth.authenticatedCertificate {
                    metadata["cert_key_id"] = "\(certificate.keyID)"
                    metadata["cert_serial"] = "\(certificate.serial)"
                }
                logger.info("authenticated", metadata: metadata)
                startConnectionLayer(user: user, context: context)
            }
            return
        }
        try connection?.receive(payload)
    }

    private func startConnectionLayer(user: String, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let sessionContext = SSHSessionContext(username: user, certificate: userAuth.authenticatedCertificate,
                                               remoteAddress: context.remoteAddress, eventLoop: context.eventLoop)
        connection = SSHConnectionLayer(
            context: sessionContext, makeHandler: configuration.sessionHandlerFactory,
            send: { [weak transport] in try transport?.send($0) },
            fail: { error in handler.value.fail(error, context: loopBound.value) })
    }

    private func fail(_ error: Error, context: ChannelHandlerContext) {
        let sshError = error as? SSHError ?? SSHError(.protocolError, "\(error)")
        if sshError.reason == .connectionLost {
            logger.info("client disconnected")
        } else {
            logger.warning("disconnecting: \(sshError.message)", metadata: ["reason": "\(sshError.reason)"])
        }
        if let packet = transport?.disconnectPacket(sshError) {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(packet)).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }
}
