import NIOCore
import SSH

/// At most `total` open connections to an HTTP listener, and `perSource` from one address (an
/// IPv6 /64 counts as one): a client that opens connections and never finishes a request (or a
/// TLS handshake) cannot use up the server's descriptors and memory. Over a cap the connection is
/// closed at once. Counted as the SSH servers count theirs (`UnauthenticatedLimit`); the handler
/// is added to each connection's pipeline, before any request is read, and holds its place
/// until the connection closes.
final class ConnectionCap: Sendable {
    private let limit: UnauthenticatedLimit

    init(total: Int = 512, perSource: Int = 32) { limit = UnauthenticatedLimit(total: total, perSource: perSource) }

    var open: Int { limit.counts.total }

    func handler() -> Handler { Handler(limit: limit) }

    final class Handler: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = NIOAny
        private let limit: UnauthenticatedLimit
        private var place: UnauthenticatedLimit.Place?

        init(limit: UnauthenticatedLimit) { self.limit = limit }

        func handlerAdded(context: ChannelHandlerContext) {
            guard let place = limit.admit(context.channel.remoteAddress) else { return context.close(promise: nil) }
            self.place = place
        }

        func handlerRemoved(context: ChannelHandlerContext) { release() }

        func channelInactive(context: ChannelHandlerContext) {
            release()
            context.fireChannelInactive()
        }

        private func release() {
            place?.release()
            place = nil
        }
    }
}
