import FIPSCrypto
import Foundation
import Logging
import NIOCore
import NIOPosix
@testable import SSH

/// A client that does the key exchange (and, when given a key, authentication) honestly with our
/// own transport, then sends whatever a hostile-peer test scripts: raw bytes past the packet
/// protection, or well-protected messages that break the protocol's rules.
final class ScriptedClient: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct TrustAny: SSHHostKeyVerifier {
        func decide(_ hostKey: PresentedHostKey) -> AuthenticationDecision { .accept }
    }

    private let crypto: CryptoContext
    private let key: PrivateKey?
    private let ready: EventLoopPromise<Void>
    private var transport: SSHTransport!
    private var userAuth: UserAuthenticationClient?
    private var context: ChannelHandlerContext?
    /// Service messages the server sent, in order.
    var received: [ByteBuffer] = []
    /// Every byte string written to the socket, in order (for replays).
    var written: [ByteBuffer] = []
    /// Why the connection ended: the server's DISCONNECT text, or the close.
    private let end: EndReason
    private var ended: String? {
        get { end.value }
        set { end.value = newValue }
    }

    final class EndReason: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: String?
        var value: String? {
            get { lock.withLock { stored } }
            set { lock.withLock { stored = newValue } }
        }
    }

    private init(crypto: CryptoContext, key: PrivateKey?, ready: EventLoopPromise<Void>, end: EndReason) {
        self.crypto = crypto
        self.key = key
        self.ready = ready
        self.end = end
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        transport = SSHTransport(configuration: .init(role: .client(verifier: TrustAny()), crypto: crypto, algorithms: .default,
                                                      rekeyAfterBytes: 1 << 30, logger: Logger(label: "scripted")))
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        transport.write = { bytes in
            bound.value.written.append(bytes)
            bound.value.context?.writeAndFlush(NIOAny(bytes), promise: nil)
        }
        if let key {
            let userAuth = UserAuthenticationClient(crypto: crypto, username: "alice", privateKey: key, certificate: nil) { [weak transport] in
                transport?.sessionID
            }
            userAuth.send = { [weak transport] in try transport?.send($0) }
            self.userAuth = userAuth
            transport.onFirstKeyExchange = { try userAuth.start() }
        } else {
            transport.onFirstKeyExchange = { bound.value.ready.succeed() }
        }
        transport.deliver = { payload in
            let me = bound.value
            if let userAuth = me.userAuth, !userAuth.authenticated {
                try userAuth.receive(payload)
                if userAuth.authenticated { me.ready.succeed() }
                return
            }
            me.received.append(payload)
        }
        do { try transport.start() } catch { ended = "\(error)" }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        do { try transport.receive(&bytes) } catch {
            ended = ended ?? "\(error)"
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        ended = ended ?? "closed"
        ready.fail(SSHError(.connectionLost, ended!))
    }

    /// Connects and completes the key exchange, and authentication when `key` is given.
    static func connect(port: Int, crypto: CryptoContext, key: PrivateKey? = nil) async throws -> Handle {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let ready = loop.makePromise(of: Void.self)
        let end = EndReason()
        let channel = try await ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ScriptedClient(crypto: crypto, key: key, ready: ready, end: end))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        try await ready.futureResult.get()
        return Handle(channel: channel, end: end)
    }

    struct Handle: Sendable {
        let channel: Channel
        let end: EndReason

        private func onLoop<T: Sendable>(_ body: @escaping @Sendable (ScriptedClient) throws -> T) async throws -> T {
            try await channel.eventLoop.submit {
                try body(try channel.pipeline.syncOperations.handler(type: ScriptedClient.self))
            }.get()
        }

        /// A message through the transport: correctly framed and protected.
        func send(_ message: ByteBuffer) async throws { try await onLoop { try $0.transport.send(message) } }

        /// Bytes straight onto the socket, past the transport.
        func writeRaw(_ bytes: ByteBuffer) async throws { try await channel.writeAndFlush(bytes) }

        func written() async throws -> [ByteBuffer] { try await onLoop { $0.written } }
        func received() async throws -> [ByteBuffer] { try await onLoop { $0.received } }

        /// Waits for the server to end the connection; returns why.
        func waitForEnd(timeout: TimeInterval = 10) async throws -> String? {
            let deadline = Date().addingTimeInterval(timeout)
            while channel.isActive && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
            guard !channel.isActive else { return nil }
            return end.value ?? "closed"
        }

        func close() async { try? await channel.close() }
    }
}
