import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
@testable import SSH

/// Our SSH client and our server back to back in memory: two channels on one test event loop,
/// bytes carried between them by `pump()`, time moved only by `advance(by:)`. A whole
/// connection (key exchange, user authentication, channels, the server's timers) runs with no
/// socket, no root and no sleep.
///
/// The loop is NIO's `NIOAsyncTestingEventLoop`, not `EmbeddedEventLoop`: authorization is
/// asynchronous (admission awaits locks and leases in a task, then hops back to the loop), and an
/// `EmbeddedEventLoop` may only be touched from the thread that made it. The test drives
/// everything from one task, so the harness's own state needs no lock.
final class BackToBack: @unchecked Sendable {
    static let clientAddress = try! SocketAddress(ipAddress: "192.0.2.7", port: 50000)
    static let serverAddress = try! SocketAddress(ipAddress: "198.51.100.1", port: 3022)

    let loop: NIOAsyncTestingEventLoop
    let client: NIOAsyncTestingChannel
    let server: NIOAsyncTestingChannel
    private let clientHandler: NIOLoopBound<SSHClientHandler>
    private let authorizations: PendingAuthorizations
    private let authentication = NIOLockedValueBox<Result<Void, Error>?>(nil)
    /// While set, what the client sends is lost on the way: a peer that went silent.
    var clientSilenced = false

    /// Connects and pumps until the handshake has gone as far as it goes (see `authenticated`).
    init(server configuration: SSHServerConfiguration, client clientConfiguration: SSHClientConfiguration,
         loop: NIOAsyncTestingEventLoop = NIOAsyncTestingEventLoop()) async throws {
        let authorizations = PendingAuthorizations()
        var tracked = configuration
        tracked.authenticator = TrackedAuthenticator(inner: configuration.authenticator, pending: authorizations)
        let configuration = tracked
        let authenticated = loop.makePromise(of: Void.self)
        self.loop = loop
        self.authorizations = authorizations
        server = try await NIOAsyncTestingChannel(loop: loop) { channel in
            try channel.pipeline.syncOperations.addHandler(SSHServerHandler(configuration: configuration))
        }
        client = try await NIOAsyncTestingChannel(loop: loop) { channel in
            try channel.pipeline.syncOperations.addHandler(SSHClientHandler(configuration: clientConfiguration, authenticated: authenticated))
        }
        clientHandler = try await loop.submit { [client] in
            NIOLoopBound(try client.pipeline.syncOperations.handler(type: SSHClientHandler.self), eventLoop: loop)
        }.get()
        authenticated.futureResult.whenComplete { [authentication] result in authentication.withLockedValue { $0 = result } }
        for (channel, local, remote) in [(server, Self.serverAddress, Self.clientAddress), (client, Self.clientAddress, Self.serverAddress)] {
            channel.localAddress = local
            channel.remoteAddress = remote
            try await channel.connect(to: remote).get()
        }
        try await pump()
    }

    /// Nil while the client is still authenticating; then whether it got in.
    var authenticated: Result<Void, Error>? { authentication.withLockedValue { $0 } }
    var isConnected: Bool { client.isActive && server.isActive }

    /// Why the client's connection ended (as the client saw it), once it has.
    var clientFailure: SSHError? {
        get async throws { try await loop.submit { [clientHandler] in clientHandler.value.failure }.get() }
    }

    /// Carries bytes both ways until neither side has more to say and no authorization is being
    /// decided. A side that closed closes the other, as a TCP peer sees the end.
    func pump() async throws {
        for _ in 0..<10_000 {
            await loop.run()
            let toServer = try await carry(from: client, to: server, lost: clientSilenced)
            let toClient = try await carry(from: server, to: client, lost: false)
            if toServer || toClient { continue }
            let pending = authorizations.take()
            if !pending.isEmpty {
                for decision in pending { _ = try? await decision.get() }
                continue
            }
            if client.isActive != server.isActive {
                (client.isActive ? client : server).close(promise: nil)
                continue
            }
            return
        }
        throw SSHError(.protocolError, "the peers never went quiet")
    }

    /// Moves the loop's clock on by `amount`, a second at a time with the bytes carried after
    /// each step: timers fire in order, and each side answers the other within the second (a
    /// keepalive is answered before the next is due).
    func advance(by amount: TimeAmount) async throws {
        var left = amount
        while left > .zero {
            let step = min(left, .seconds(1))
            await loop.advanceTime(by: step)
            try await pump()
            left = left - step
        }
    }

    /// Runs `body` on the loop, then pumps.
    func onLoop(_ body: @escaping @Sendable () -> Void) async throws {
        try await loop.submit(body).get()
        try await pump()
    }

    /// Asks the server for a session channel and pumps: `session.opened` then says how it went.
    func openSession(_ session: ClientSession) async throws {
        try await onLoop { [clientHandler] in
            guard let connection = clientHandler.value.connection else {
                return session.opened = .failure(SSHError(.connectionLost, "not connected"))
            }
            connection.openChannel(.session, handler: session) { result in
                if case .success(let channel) = result { session.channel = channel }
                session.opened = result.map { _ in }
            }
        }
    }

    /// Closes what is still open and lets the loop go.
    func finish() async {
        client.close(promise: nil)
        server.close(promise: nil)
        await loop.run()
        await loop.shutdownGracefully()
    }
}

extension BackToBack {
    private func carry(from source: NIOAsyncTestingChannel, to destination: NIOAsyncTestingChannel, lost: Bool) async throws -> Bool {
        var moved = false
        while let bytes = try await source.readOutbound(as: ByteBuffer.self) {
            moved = true
            if !lost && destination.isActive { try await destination.writeInbound(bytes) }
        }
        return moved
    }
}

/// Authorizations still being decided (off the loop): `pump()` waits for them, so a handshake
/// with an asynchronous authenticator completes without polling.
private final class PendingAuthorizations: Sendable {
    private let futures = NIOLockedValueBox<[EventLoopFuture<AuthenticationDecision>]>([])

    func add(_ future: EventLoopFuture<AuthenticationDecision>) { futures.withLockedValue { $0.append(future) } }

    func take() -> [EventLoopFuture<AuthenticationDecision>] {
        futures.withLockedValue { futures in
            defer { futures = [] }
            return futures
        }
    }
}

private struct TrackedAuthenticator: SSHServerAuthenticator {
    let inner: SSHServerAuthenticator
    let pending: PendingAuthorizations

    func decide(_ offer: PublicKeyOffer) -> AuthenticationDecision { inner.decide(offer) }

    func authorize(_ offer: PublicKeyOffer, connection: SSHConnectionControl) -> EventLoopFuture<AuthenticationDecision> {
        let decision = inner.authorize(offer, connection: connection)
        pending.add(decision)
        return decision
    }

    func refused(user: String, offer: PublicKeyOffer?, reason: String, connection: SSHConnectionControl) {
        inner.refused(user: user, offer: offer, reason: reason, connection: connection)
    }
}
