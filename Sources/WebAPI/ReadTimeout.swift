import NIOCore

/// Closes a connection on which nothing has moved for `timeout`: a TLS handshake that stalls, a
/// request that never comes, a socket whose browser vanished (a live one answers the pings).
/// Reads and writes both count, so a long download the client only receives stays open. Added
/// before TLS and never removed, so it holds from the first byte to the last.
final class ReadTimeoutHandler: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    private let timeout: TimeAmount
    private var lastActivity = NIODeadline.uptimeNanoseconds(0)
    private var check: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) {
        lastActivity = context.eventLoop.now
        if context.channel.isActive { schedule(context, in: timeout) }
    }

    func channelActive(context: ChannelHandlerContext) {
        lastActivity = context.eventLoop.now
        if check == nil { schedule(context, in: timeout) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastActivity = context.eventLoop.now
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        lastActivity = context.eventLoop.now
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) { stop() }

    private func stop() {
        check?.cancel()
        check = nil
    }

    /// One timer per connection, moved on by activity rather than re-made at every read or write.
    private func schedule(_ context: ChannelHandlerContext, in delay: TimeAmount) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        check = context.eventLoop.scheduleTask(in: delay) {
            let (handler, context) = bound.value
            let idle = context.eventLoop.now - handler.lastActivity
            if idle >= handler.timeout {
                context.close(promise: nil)
            } else {
                handler.schedule(context, in: handler.timeout - idle)
            }
        }
    }
}
