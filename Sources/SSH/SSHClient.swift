import FIPSCrypto
import Logging
import NIOCore
import NIOPosix

/// Everything a client connection needs: who we are (a key, usually with a certificate from our
/// user CA) and how we decide to trust the server.
public struct SSHClientConfiguration: Sendable {
    public var crypto: CryptoContext
    public var algorithms: SSHAlgorithms
    public var username: String
    public var privateKey: PrivateKey
    public var certificate: SSHCertificate?
    public var hostKeyVerifier: SSHHostKeyVerifier
    /// Time allowed from connect to successful authentication.
    public var authenticationTimeout: TimeAmount
    public var rekeyAfterBytes: Int
    public var rekeyInterval: TimeAmount?
    public var logger: Logger
    /// Told each banner the server sends before authentication ends (a refusal's reason comes
    /// as one: the web terminal shows it to the person).
    public var onBanner: (@Sendable (String) -> Void)?

    public init(crypto: CryptoContext, algorithms: SSHAlgorithms = .default, username: String, privateKey: PrivateKey,
                certificate: SSHCertificate? = nil, hostKeyVerifier: SSHHostKeyVerifier, authenticationTimeout: TimeAmount = .seconds(30),
                rekeyAfterBytes: Int = 1 << 30, rekeyInterval: TimeAmount? = .hours(1), logger: Logger = Logger(label: "portcullis.ssh.client")) {
        self.crypto = crypto
        self.algorithms = algorithms
        self.username = username
        self.privateKey = privateKey
        self.certificate = certificate
        self.hostKeyVerifier = hostKeyVerifier
        self.authenticationTimeout = authenticationTimeout
        self.rekeyAfterBytes = rekeyAfterBytes
        self.rekeyInterval = rekeyInterval
        self.logger = logger
    }
}

/// The NIO side of a client connection: transport, user authentication, then the connection
/// layer, on which the application opens channels.
final class SSHClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let configuration: SSHClientConfiguration
    private let authenticated: EventLoopPromise<Void>
    private var link: SSHTransportLink!
    private var userAuth: UserAuthenticationClient!
    private var authTimeout: Scheduled<Void>?
    private(set) var connection: SSHConnectionLayer?
    /// Kept past the link (which goes when the connection ends).
    private var verifiedHostKey: PresentedHostKey?
    private var endedWith: SSHError?
    var serverHostKey: PresentedHostKey? { link?.transport.serverHostKey ?? verifiedHostKey }
    /// Why the connection ended, once it has.
    var failure: SSHError? { link?.failure ?? endedWith }

    init(configuration: SSHClientConfiguration, authenticated: EventLoopPromise<Void>) {
        self.configuration = configuration
        self.authenticated = authenticated
    }

    func channelActive(context: ChannelHandlerContext) {
        link = SSHTransportLink(context: context, role: .client(verifier: configuration.hostKeyVerifier), crypto: configuration.crypto,
                                algorithms: configuration.algorithms, rekeyAfterBytes: configuration.rekeyAfterBytes,
                                rekeyInterval: configuration.rekeyInterval, logger: configuration.logger, peerName: "server")
        let transport = link.transport
        let userAuth = UserAuthenticationClient(crypto: configuration.crypto, username: configuration.username,
                                                privateKey: configuration.privateKey, certificate: configuration.certificate) { [weak transport] in
            transport?.sessionID
        }
        userAuth.send = { [weak transport] in try transport?.send($0) }
        userAuth.onBanner = { [logger = link.logger, told = configuration.onBanner] in
            logger.info("server banner", metadata: ["banner": "\($0)"])
            told?($0)
        }
        self.userAuth = userAuth
        transport.onFirstKeyExchange = { try userAuth.start() }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        transport.deliver = { [weak self] payload in try self?.deliver(payload, context: loopBound.value) }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        authTimeout = context.eventLoop.scheduleTask(in: configuration.authenticationTimeout) {
            guard let userAuth = handler.value.userAuth, !userAuth.authenticated else { return }
            handler.value.link?.fail(SSHError(.byApplication, "the server did not complete authentication in time"))
        }
        link.start()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        authTimeout?.cancel()
        link?.stop()
        connection?.connectionClosed()
        connection = nil
        authenticated.fail(link?.failure ?? SSHError(.connectionLost, "the server closed the connection"))
        // As the server does: the link holds this handler's context (which holds the handler),
        // so let go of it, or every client connection (one per proxied session) would leak.
        verifiedHostKey = link?.transport.serverHostKey
        endedWith = link?.failure
        link = nil
        userAuth = nil
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection?.transportWritabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        link?.receive(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        link?.fail(SSHError(.connectionLost, "\(error)"))
    }

    private func deliver(_ payload: ByteBuffer, context: ChannelHandlerContext) throws {
        guard userAuth.authenticated else {
            try userAuth.receive(payload)
            if userAuth.authenticated {
                authTimeout?.cancel()
                let sessionContext = SSHSessionContext(username: configuration.username, certificate: configuration.certificate,
                                                       remoteAddress: context.remoteAddress, eventLoop: context.eventLoop)
                connection = SSHConnectionLayer(role: .client, context: sessionContext,
                                                send: { [weak transport = link.transport] in try transport?.send($0) },
                                                fail: { [weak link] in link?.fail($0) })
                link.logger.debug("authenticated to the server")
                authenticated.succeed()
            }
            return
        }
        try connection?.receive(payload)
    }
}

/// An authenticated client connection. Open channels on it from its event loop.
public final class SSHClient: Sendable {
    public let channel: Channel
    private let handler: NIOLoopBound<SSHClientHandler>

    public var eventLoop: EventLoop { channel.eventLoop }

    private init(channel: Channel, handler: NIOLoopBound<SSHClientHandler>) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects, verifies the server and authenticates; throws why not (host key refused,
    /// certificate refused, timeout, …).
    public static func connect(host: String, port: Int, configuration: SSHClientConfiguration,
                               group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> SSHClient {
        let eventLoop = group.next()
        let authenticated = eventLoop.makePromise(of: Void.self)
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: eventLoop)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .connectTimeout(configuration.authenticationTimeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(SSHClientHandler(configuration: configuration, authenticated: authenticated))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            // Never active, so the handler never completes it.
            authenticated.fail(error)
            throw error
        }
        let handler = try await eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: SSHClientHandler.self), eventLoop: eventLoop)
        }.get()
        try await authenticated.futureResult.get()
        return SSHClient(channel: channel, handler: handler)
    }

    /// The server's host key (and certificate) as verified in the key exchange.
    public var serverHostKey: PresentedHostKey? {
        get async { try? await eventLoop.submit { self.handler.value.serverHostKey }.get() }
    }

    /// Asks the server to open a channel. Call on `eventLoop`; `opened` is called there.
    public func openChannel(_ type: SSHChannelType, handler channelHandler: SSHSessionHandler,
                            opened: @escaping (Result<SSHSessionChannel, SSHError>) -> Void) {
        eventLoop.preconditionInEventLoop()
        guard let connection = handler.value.connection else {
            return opened(.failure(handler.value.failure ?? SSHError(.connectionLost, "the connection is closed")))
        }
        connection.openChannel(type, handler: channelHandler, opened: opened)
    }

    /// Runs `command` in a session and collects its output (at most `outputLimit` bytes of each
    /// stream; the command is ended beyond that). For short commands; stream long ones through
    /// `openChannel`.
    public func execute(_ command: String, outputLimit: Int = 16 << 20) async throws -> SSHExecResult {
        let promise = eventLoop.makePromise(of: SSHExecResult.self)
        eventLoop.execute {
            let collector = ExecCollector(limit: outputLimit, promise: promise)
            self.openChannel(.session, handler: collector) { result in
                switch result {
                case .failure(let error): promise.fail(error)
                case .success(let channel):
                    channel.sendRequest(.exec(command: command)) { accepted in
                        if !accepted {
                            promise.fail(SSHError(.byApplication, "the server refused to run the command"))
                            channel.close()
                        }
                    }
                    channel.sendEOF()
                }
            }
        }
        return try await promise.futureResult.get()
    }

    public func close() async {
        try? await channel.close()
    }
}

/// What `SSHClient.execute` collected.
public struct SSHExecResult: Sendable, Equatable {
    public var standardOutput: [UInt8]
    public var standardError: [UInt8]
    public var exitStatus: UInt32?
    public var exitSignal: String?
}

private final class ExecCollector: SSHSessionHandler {
    private let limit: Int
    private let promise: EventLoopPromise<SSHExecResult>
    private var result = SSHExecResult(standardOutput: [], standardError: [], exitStatus: nil, exitSignal: nil)

    init(limit: Int, promise: EventLoopPromise<SSHExecResult>) {
        self.limit = limit
        self.promise = promise
    }

    func handle(_ request: SessionRequest, on channel: SSHSessionChannel) -> Bool {
        switch request {
        case .exitStatus(let status): result.exitStatus = status
        case .exitSignal(let name, _, _): result.exitSignal = name
        case .endOfWrite: break
        default: return false
        }
        return true
    }

    func receive(_ data: ByteBuffer, on channel: SSHSessionChannel) { collect(data, into: \.standardOutput, channel) }
    func receiveExtendedData(_ data: ByteBuffer, on channel: SSHSessionChannel) { collect(data, into: \.standardError, channel) }

    private func collect(_ data: ByteBuffer, into stream: WritableKeyPath<SSHExecResult, [UInt8]>, _ channel: SSHSessionChannel) {
        guard result[keyPath: stream].count + data.readableBytes <= limit else {
            promise.fail(SSHError(.byApplication, "the command's output exceeded \(limit) bytes"))
            return channel.close()
        }
        result[keyPath: stream] += data.readableBytesView
        channel.consumed(data.readableBytes)
    }

    func receiveEOF(on channel: SSHSessionChannel) {}
    func writabilityChanged(on channel: SSHSessionChannel) {}
    func closed(_ channel: SSHSessionChannel) { promise.succeed(result) }
}
