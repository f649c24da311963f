import NIOCore

/// TLS on a NIO channel through OpenSSL's libssl (`TLSConnection`): ciphertext below, plaintext
/// above. A client starts the handshake when the channel becomes active; writes made before the
/// handshake completes wait for it. A peer's close_notify ends the input (`inputClosed`);
/// closing sends ours.
/// Everything the peer sends goes through OpenSSL's own bounds (record and handshake message
/// sizes); a failure closes the connection with the reason as an error in the pipeline.
public final class OpenSSLTLSHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let connection: TLSConnection
    private var waiting: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var flushWaiting = false
    private var closing = false
    private var readSomething = false
    private var inputClosed = false

    /// `serverName`: a client's expected server (sent as SNI and checked against its certificate).
    public init(context: TLSContext, serverName: String? = nil) throws {
        connection = try TLSConnection(context: context, serverName: serverName)
    }

    public func channelActive(context: ChannelHandlerContext) {
        advance(context: context)
        context.fireChannelActive()
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { advance(context: context) }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.feed(unwrapInboundIn(data))
        advance(context: context)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        if readSomething {
            readSomething = false
            context.fireChannelReadComplete()
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        fail(connection.handshakeDone ? ChannelError.ioOnClosedChannel : TLSError.closedDuringHandshake, context: context, close: false)
        context.fireChannelInactive()
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        waiting.append((unwrapOutboundIn(data), promise))
    }

    public func flush(context: ChannelHandlerContext) {
        flushWaiting = true
        sendWaiting(context: context)
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .all || mode == .output, !closing else { return context.close(mode: mode, promise: promise) }
        closing = true
        if connection.handshakeDone {
            sendWaiting(context: context)
            connection.shutdown()
            if let output = connection.takeOutput(context.channel.allocator) { context.write(wrapOutboundOut(output), promise: nil) }
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }

    /// Handshake, then whatever can be decrypted up, then whatever is to be sent down.
    private func advance(context: ChannelHandlerContext) {
        do {
            if !connection.handshakeDone {
                if try connection.handshake() {
                    sendWaiting(context: context)
                }
            }
            if connection.handshakeDone {
                var buffer = context.channel.allocator.buffer(capacity: 16 * 1024)
                reading: while true {
                    switch try connection.read(into: &buffer) {
                    case .data:
                        if buffer.writableBytes < 1024 {
                            readSomething = true
                            context.fireChannelRead(wrapInboundOut(buffer))
                            buffer = context.channel.allocator.buffer(capacity: 16 * 1024)
                        }
                    case .needMore: break reading
                    case .closed:
                        // The peer's close_notify ends its input only: the layer above may still
                        // answer, and its close sends ours.
                        if buffer.readableBytes > 0 { readSomething = true; context.fireChannelRead(wrapInboundOut(buffer)) }
                        buffer.clear()
                        if !inputClosed {
                            inputClosed = true
                            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
                        }
                        break reading
                    }
                }
                if buffer.readableBytes > 0 {
                    readSomething = true
                    context.fireChannelRead(wrapInboundOut(buffer))
                }
            }
            if let output = connection.takeOutput(context.channel.allocator) {
                context.writeAndFlush(wrapOutboundOut(output), promise: nil)
            }
        } catch {
            fail(error, context: context, close: true)
        }
    }

    /// The application's writes, encrypted and sent (after the handshake).
    private func sendWaiting(context: ChannelHandlerContext) {
        guard connection.handshakeDone, flushWaiting, !waiting.isEmpty else { return }
        flushWaiting = false
        let writes = waiting
        waiting = []
        var promises: [EventLoopPromise<Void>] = []
        for (index, (bytes, promise)) in writes.enumerated() {
            do {
                try connection.write(bytes)
            } catch {
                // Every write of the batch fails: those encrypted already never left.
                promises.forEach { $0.fail(error) }
                writes[index...].forEach { $0.1?.fail(error) }
                return fail(error, context: context, close: true)
            }
            if let promise { promises.append(promise) }
        }
        guard let output = connection.takeOutput(context.channel.allocator) else {
            promises.forEach { $0.succeed(()) }
            return
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        for promise in promises { written.futureResult.cascade(to: promise) }
        context.writeAndFlush(wrapOutboundOut(output), promise: written)
    }

    private func fail(_ error: Error, context: ChannelHandlerContext, close: Bool) {
        let writes = waiting
        waiting = []
        writes.forEach { $0.1?.fail(error) }
        guard close else { return }
        context.fireErrorCaught(error)
        guard !closing else { return }
        closing = true
        // An alert OpenSSL made for the peer goes out before the close.
        if let output = connection.takeOutput(context.channel.allocator) { context.writeAndFlush(wrapOutboundOut(output), promise: nil) }
        context.close(promise: nil)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        fail(ChannelError.ioOnClosedChannel, context: context, close: false)
    }
}
