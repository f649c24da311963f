import NIOCore
import Synchronization

/// At most `total` open connections to an HTTP listener, and `perSource` from one address: a
/// client that opens connections and never finishes a request (or a TLS handshake) cannot use up
/// the server's descriptors and memory. Over a cap the connection is closed at once. The handler
/// is added to each connection's pipeline (before any request is read) and counts it until it closes.
final class ConnectionCap: Sendable {
    let total: Int
    let perSource: Int
    private let state = Mutex((total: 0, bySource: [String: Int]()))

    init(total: Int = 512, perSource: Int = 32) {
        self.total = total
        self.perSource = perSource
    }

    var open: Int { state.withLock { $0.total } }

    fileprivate func admit(_ source: String) -> Bool {
        state.withLock { state in
            guard state.total < total, state.bySource[source, default: 0] < perSource else { return false }
            state.total += 1
            state.bySource[source, default: 0] += 1
            return true
        }
    }

    fileprivate func release(_ source: String) {
        state.withLock { state in
            state.total -= 1
            let left = state.bySource[source, default: 1] - 1
            state.bySource[source] = left > 0 ? left : nil
        }
    }

    func handler() -> Handler { Handler(cap: self) }

    final class Handler: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = NIOAny
        private let cap: ConnectionCap
        private var counted: String?

        init(cap: ConnectionCap) { self.cap = cap }

        func handlerAdded(context: ChannelHandlerContext) {
            let source = context.channel.remoteAddress?.ipAddress ?? "unknown"
            guard cap.admit(source) else { return context.close(promise: nil) }
            counted = source
        }

        func handlerRemoved(context: ChannelHandlerContext) { release() }

        func channelInactive(context: ChannelHandlerContext) {
            release()
            context.fireChannelInactive()
        }

        private func release() {
            guard let source = counted else { return }
            counted = nil
            cap.release(source)
        }
    }
}
