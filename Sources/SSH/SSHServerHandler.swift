import FIPSCrypto
import Logging
import NIOCore

/// Everything a server connection needs.
public struct SSHServerConfiguration: Sendable {
    public var crypto: CryptoContext
    public var algorithms: SSHAlgorithms
    public let hostKeys: [PrivateKey]
    /// Host certificates for some of `hostKeys`, offered before the plain keys.
    public let hostCertificates: [SSHCertificate]
    /// Every form of the host keys, with their public blobs, made once for all connections (or
    /// why the keys and certificates do not fit together).
    let hostKeyForms: Result<[SSHHostKey], Error>
    public var authenticator: SSHServerAuthenticator
    /// Shown to the user before authentication (e.g. the AC-8 system use notification).
    public var banner: String?
    /// Time allowed from connect to successful authentication.
    public var authenticationTimeout: TimeAmount
    /// The server starts a re-key after this many bytes either way, or this long (RFC 4344 §3.1
    /// asks for a re-key at least every 2^32 packets / once an hour is common hardening).
    public var rekeyAfterBytes: Int
    public var rekeyInterval: TimeAmount?
    /// After authentication the server sends `keepalive@openssh.com` this often, and disconnects
    /// a client that left `keepaliveMaximumMissed` of them in a row unanswered (OpenSSH's
    /// ClientAliveInterval/ClientAliveCountMax). Nil turns keepalives off.
    public var keepaliveInterval: TimeAmount?
    public var keepaliveMaximumMissed: Int
    /// Makes the handler of each session channel; nil (or returning nil) refuses sessions.
    public var sessionHandlerFactory: (@Sendable (SSHSessionContext, SSHSessionChannel) -> SSHSessionHandler?)?
    /// Asked first about every channel the client opens: a reason refuses it (the client sees
    /// the reason), nil lets it through to the handlers below. Where per-connection limits such
    /// as `max_sessions` are enforced.
    public var channelAdmission: (@Sendable (SSHSessionContext, SSHChannelOpening) -> String?)?
    /// Decides each `direct-tcpip` channel (accept once the target is connected, or reject with
    /// a reason); nil refuses port forwarding.
    public var directTCPIPHandler: (@Sendable (SSHSessionContext, DirectTCPIPRequest, SSHChannelOpening) -> Void)?
    /// Connections not yet authenticated, in all and per source.
    public var unauthenticatedLimit: UnauthenticatedLimit
    public var logger: Logger

    public init(crypto: CryptoContext, algorithms: SSHAlgorithms = .default, hostKeys: [PrivateKey], hostCertificates: [SSHCertificate] = [],
                authenticator: SSHServerAuthenticator, banner: String? = nil, authenticationTimeout: TimeAmount = .seconds(60),
                unauthenticatedLimit: UnauthenticatedLimit = UnauthenticatedLimit(),
                rekeyAfterBytes: Int = 1 << 30, rekeyInterval: TimeAmount? = .hours(1),
                keepaliveInterval: TimeAmount? = .minutes(5), keepaliveMaximumMissed: Int = 3,
                channelAdmission: (@Sendable (SSHSessionContext, SSHChannelOpening) -> String?)? = nil,
                sessionHandlerFactory: (@Sendable (SSHSessionContext, SSHSessionChannel) -> SSHSessionHandler?)? = nil,
                directTCPIPHandler: (@Sendable (SSHSessionContext, DirectTCPIPRequest, SSHChannelOpening) -> Void)? = nil,
                logger: Logger = Logger(label: "portcullis.ssh")) {
        self.crypto = crypto
        self.algorithms = algorithms
        self.hostKeys = hostKeys
        self.hostCertificates = hostCertificates
        hostKeyForms = Result { try SSHHostKey.forms(keys: hostKeys, certificates: hostCertificates) }
        self.authenticator = authenticator
        self.banner = banner
        self.authenticationTimeout = authenticationTimeout
        self.unauthenticatedLimit = unauthenticatedLimit
        self.rekeyAfterBytes = rekeyAfterBytes
        self.rekeyInterval = rekeyInterval
        self.keepaliveInterval = keepaliveInterval
        self.keepaliveMaximumMissed = keepaliveMaximumMissed
        self.channelAdmission = channelAdmission
        self.sessionHandlerFactory = sessionHandlerFactory
        self.directTCPIPHandler = directTCPIPHandler
        self.logger = logger
    }
}

/// The NIO side of a server connection: bytes in and out of the transport, authentication, then
/// the connection layer. Any protocol error ends in a DISCONNECT with the reason and a log line.
public final class SSHServerHandler: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let configuration: SSHServerConfiguration
    private var link: SSHTransportLink!
    private var userAuth: UserAuthenticationServer!
    private var authTimeout: Scheduled<Void>?
    private var keepaliveTimer: RepeatedTask?
    private var connection: SSHConnectionLayer?
    private var control: SSHConnectionControl?
    /// Messages that arrived while the authenticator was still deciding (bounded).
    private var heldBack: [ByteBuffer] = []
    static let heldBackLimit = 64
    /// Held from connect until authentication (or the end).
    private var unauthenticatedPlace: UnauthenticatedLimit.Place?
    /// Reads left during which every ACK goes at once (TCP_QUICKACK, which the kernel drops
    /// after a while, so it is set again on each): OpenSSH's client leaves Nagle on, and during
    /// the handshake's small exchanges our delayed ACK held its next packet up to 40 ms.
    private var quickAcks = 32

    public init(configuration: SSHServerConfiguration) {
        self.configuration = configuration
    }

    public func channelActive(context: ChannelHandlerContext) {
        let limit = configuration.unauthenticatedLimit
        guard let place = limit.admit(context.remoteAddress) else {
            if let refused = limit.noteRefusal() {
                configuration.logger.warning("connections refused: too many unauthenticated connections",
                                             metadata: ["refused": "\(refused)", "latest_remote": "\(context.remoteAddress?.hostPortText ?? "?")",
                                                        "total": "\(limit.total)", "per_source": "\(limit.perSource)"])
            }
            context.close(promise: nil)
            return
        }
        unauthenticatedPlace = place
        do {
            let hostKeys = try configuration.hostKeyForms.get()
            link = SSHTransportLink(context: context, role: .server(hostKeys: hostKeys), crypto: configuration.crypto,
                                    algorithms: configuration.algorithms, rekeyAfterBytes: configuration.rekeyAfterBytes,
                                    rekeyInterval: configuration.rekeyInterval, logger: configuration.logger, peerName: "client")
        } catch {
            configuration.logger.error("refusing connections: \(error)")
            context.close(promise: nil)
            return
        }
        let transport = link.transport
        let control = SSHConnectionControl(eventLoop: context.eventLoop, remoteAddress: context.remoteAddress,
                                           localAddress: context.localAddress) { [weak link] in link?.fail($0) }
        self.control = control
        let userAuth = UserAuthenticationServer(crypto: configuration.crypto, authenticator: configuration.authenticator,
                                                banner: configuration.banner, connection: control) { [weak transport] in
            transport?.sessionID
        }
        userAuth.send = { [weak transport] in try transport?.send($0) }
        userAuth.onRejection = { [logger = link.logger] user, reason in
            logger.notice("authentication refused", metadata: ["user": "\(user)", "reason": "\(reason)"])
        }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        userAuth.onAuthenticated = { handler.value.authenticated(context: loopBound.value) }
        userAuth.onError = { handler.value.link.fail($0) }
        transport.deliver = { [weak self] payload in try self?.deliver(payload, context: loopBound.value) }
        self.userAuth = userAuth
        authTimeout = context.eventLoop.scheduleTask(in: configuration.authenticationTimeout) {
            guard handler.value.userAuth.authenticatedUser == nil else { return }
            handler.value.link.fail(SSHError(.byApplication, "authentication timed out"))
        }
        link.start()
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        unauthenticatedPlace?.release()
        unauthenticatedPlace = nil
        authTimeout?.cancel()
        keepaliveTimer?.cancel()
        link?.stop()
        connection?.connectionClosed()
        connection = nil
        heldBack = []
        control?.closed()
        // The link holds this handler's context (which holds the handler), and the
        // authentication's callbacks hold the handler: let go, or each connection would leak.
        link = nil
        userAuth = nil
        control = nil
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if quickAcks > 0 {
            quickAcks -= 1
            Self.quickAck(context.channel)
        }
        link?.receive(unwrapInboundIn(data))
    }

    static func quickAck(_ channel: Channel) {
        // IPPROTO_TCP (6) and Linux's TCP_QUICKACK (12).
        let option = ChannelOptions.Types.SocketOption(level: NIOBSDSocket.OptionLevel(rawValue: 6), name: NIOBSDSocket.Option(rawValue: 12))
        try? channel.syncOptions?.setOption(option, value: 1)
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection?.transportWritabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    private func deliver(_ payload: ByteBuffer, context: ChannelHandlerContext) throws {
        if let connection { return try connection.receive(payload) }
        guard !userAuth.awaitingAuthorization else {
            guard heldBack.count < Self.heldBackLimit else { throw SSHError.protocolError("too many messages while authentication is being decided") }
            return heldBack.append(payload)
        }
        try userAuth.receive(payload)
    }

    /// The authenticator let the user in: the connection layer starts, and takes any messages
    /// that arrived while it was deciding.
    private func authenticated(context: ChannelHandlerContext) {
        guard let user = userAuth.authenticatedUser, let control, connection == nil else { return }
        authTimeout?.cancel()
        unauthenticatedPlace?.release()
        unauthenticatedPlace = nil
        link.transport.rekeyAllowed = true
        var metadata: Logger.Metadata = ["user": "\(user)"]
        if let certificate = userAuth.authenticatedCertificate {
            metadata["cert_key_id"] = "\(certificate.keyID)"
            metadata["cert_serial"] = "\(certificate.serial)"
        }
        link.logger.info("authenticated", metadata: metadata)
        startConnectionLayer(user: user, control: control, context: context)
        replayHeldBack()
    }

    private func replayHeldBack() {
        while !heldBack.isEmpty && !userAuth.awaitingAuthorization {
            let payload = heldBack.removeFirst()
            do {
                if let connection { try connection.receive(payload) } else { try userAuth.receive(payload) }
            } catch {
                heldBack = []
                return link.fail(error)
            }
        }
    }

    private func startConnectionLayer(user: String, control: SSHConnectionControl, context: ChannelHandlerContext) {
        let link = self.link!
        let sessionContext = SSHSessionContext(username: user, certificate: userAuth.authenticatedCertificate,
                                               remoteAddress: context.remoteAddress, eventLoop: context.eventLoop, connection: control)
        let configuration = configuration
        let connection = SSHConnectionLayer(
            role: .server(acceptChannel: { context, opening in
                if let refusal = configuration.channelAdmission?(context, opening) { return opening.reject(refusal) }
                switch opening.type {
                case .session:
                    guard let factory = configuration.sessionHandlerFactory else { return opening.reject("sessions are not available on this server") }
                    // The handler is made with the channel it will serve, so accept first and
                    // close again if the application declines.
                    let pending = DeferredHandler()
                    guard let channel = opening.accept(pending) else { return }
                    guard let handler = factory(context, channel) else {
                        channel.handler = nil
                        return channel.close()
                    }
                    channel.handler = handler
                case .directTCPIP(let request):
                    guard let decide = configuration.directTCPIPHandler else { return opening.reject("port forwarding is not permitted") }
                    decide(context, request, opening)
                }
            }),
            context: sessionContext,
            send: { [weak transport = link.transport] in try transport?.send($0) },
            fail: { [weak link] error in link?.fail(error) })
        self.connection = connection
        connection.transportWritabilityChanged(context.channel.isWritable)
        if let interval = configuration.keepaliveInterval {
            let maximum = configuration.keepaliveMaximumMissed
            keepaliveTimer = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak connection, weak link] _ in
                guard let connection, let link else { return }
                guard connection.unansweredKeepalives < maximum else {
                    return link.fail(SSHError(.byApplication, "the client did not answer \(maximum) keepalives in a row; assuming it is gone"))
                }
                do { try connection.sendKeepalive() } catch { link.fail(error) }
            }
        }
    }
}

/// Stands in for a session's handler between the channel's confirmation and the factory's answer.
private final class DeferredHandler: SSHSessionHandler {
    func handle(_ request: SessionRequest, on channel: SSHSessionChannel) -> Bool { false }
    func receive(_ data: ByteBuffer, on channel: SSHSessionChannel) { channel.consumed(data.readableBytes) }
    func receiveEOF(on channel: SSHSessionChannel) {}
    func writabilityChanged(on channel: SSHSessionChannel) {}
    func closed(_ channel: SSHSessionChannel) {}
}
