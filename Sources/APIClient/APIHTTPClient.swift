import NIOCore
import NIOHTTP1
import NIOPosix
import OpenSSLTLS

/// HTTP/1.1 to the appliance's APIs, one request per connection: `pcctl` over the daemon's
/// Unix socket, `pcsh` over TLS through OpenSSL (`OpenSSLTLSHandler`). Written here rather than
/// with AsyncHTTPClient, whose TLS is swift-nio-ssl's BoringSSL: with this, no Portcullis program
/// links BoringSSL at all. Answers are streamed (`send`) or collected up to a bound (`collect`).
public struct APIHTTPClient: Sendable {
    public enum Endpoint: Sendable {
        case unixSocket(path: String)
        /// `host` is also the name the server's certificate must carry (or its address).
        case tls(host: String, port: Int, context: TLSContext)
    }

    public struct Head: Sendable {
        public let status: HTTPResponseStatus
        public let headers: HTTPHeaders
    }

    public let endpoint: Endpoint
    /// How long the server may stay silent (connecting, before the answer, between its pieces).
    public let timeout: TimeAmount

    public init(_ endpoint: Endpoint, timeout: TimeAmount = .seconds(60)) {
        self.endpoint = endpoint
        self.timeout = timeout
    }

    public enum Failure: Error, CustomStringConvertible {
        case unreachable(String)
        case timedOut(TimeAmount)
        case brokenOff
        case tooLarge(Int)

        public var description: String {
            switch self {
            case .unreachable(let reason): return reason
            case .timedOut(let timeout): return "no answer within \(timeout.nanoseconds / 1_000_000_000) s"
            case .brokenOff: return "the connection closed before the answer was complete"
            case .tooLarge(let limit): return "the answer is larger than \(limit) bytes"
            }
        }
    }

    /// Sends one request; `head` sees the answer's status and headers, `body` its pieces as
    /// they arrive. Throws when the answer breaks off (after the pieces before the break).
    public func send(_ method: HTTPMethod, _ path: String, headers: HTTPHeaders = [:], body: ByteBuffer? = nil,
                     head: (Head) throws -> Void, body receive: (ByteBuffer) async throws -> Void) async throws {
        let channel = try await connect()
        try await channel.executeThenClose { inbound, outbound in
            var requestHead = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
            requestHead.headers.replaceOrAdd(name: "Host", value: hostHeader)
            requestHead.headers.replaceOrAdd(name: "Connection", value: "close")
            if let body { requestHead.headers.replaceOrAdd(name: "Content-Length", value: "\(body.readableBytes)") }
            try await outbound.write(.head(requestHead))
            if let body { try await outbound.write(.body(.byteBuffer(body))) }
            try await outbound.write(.end(nil))
            var complete = false
            for try await part in inbound {
                switch part {
                case .head(let answer): try head(Head(status: answer.status, headers: answer.headers))
                case .body(let bytes): try await receive(bytes)
                case .end:
                    complete = true
                }
                if complete { break }
            }
            guard complete else { throw Failure.brokenOff }
        }
    }

    /// Sends one request and returns the answer whole (at most `limit` bytes of body).
    public func collect(_ method: HTTPMethod, _ path: String, headers: HTTPHeaders = [:], body: ByteBuffer? = nil,
                        upTo limit: Int) async throws -> (head: Head, body: ByteBuffer) {
        var answerHead: Head?
        var collected = ByteBuffer()
        try await send(method, path, headers: headers, body: body, head: { answerHead = $0 }) { piece in
            guard collected.readableBytes + piece.readableBytes <= limit else { throw Failure.tooLarge(limit) }
            var piece = piece
            collected.writeBuffer(&piece)
        }
        guard let answerHead else { throw Failure.brokenOff }
        return (answerHead, collected)
    }

    private var hostHeader: String {
        switch endpoint {
        case .unixSocket: return "localhost"
        case .tls(let host, let port, _): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }

    private func connect() async throws -> NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart> {
        let timeout = self.timeout
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connectTimeout(timeout)
        let endpoint = self.endpoint
        @Sendable func setUp(_ channel: Channel) -> EventLoopFuture<NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>> {
            channel.eventLoop.makeCompletedFuture {
                let pipeline = channel.pipeline.syncOperations
                if case .tls(let host, _, let context) = endpoint {
                    try pipeline.addHandler(try OpenSSLTLSHandler(context: context, serverName: host))
                }
                try pipeline.addHandlers([IdleStateHandler(readTimeout: timeout), SilenceHandler(timeout: timeout)])
                try pipeline.addHTTPClientHandlers()
                return try NIOAsyncChannel(wrappingChannelSynchronously: channel)
            }
        }
        do {
            switch endpoint {
            case .unixSocket(let path): return try await bootstrap.connect(unixDomainSocketPath: path, channelInitializer: setUp)
            case .tls(let host, let port, _): return try await bootstrap.connect(host: host, port: port, channelInitializer: setUp)
            }
        } catch {
            throw Failure.unreachable("\(error)")
        }
    }

    /// A server silent for longer than the timeout ends the request with an error.
    private final class SilenceHandler: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = NIOAny
        let timeout: TimeAmount
        init(timeout: TimeAmount) { self.timeout = timeout }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            guard case IdleStateHandler.IdleStateEvent.read = event else { return context.fireUserInboundEventTriggered(event) }
            context.fireErrorCaught(Failure.timedOut(timeout))
            context.close(promise: nil)
        }
    }
}
