import NIOCore

/// Joins an SSH channel with NIO channels (a socket, pipes, a PTY master) on the same event
/// loop, with back-pressure both ways: bytes read from each input go to the SSH channel (as data,
/// or as extended data for stderr), and the peer's bytes go to the output channel, the peer
/// getting more window only once they were written. End of input travels both ways. The owner's
/// `SSHSessionHandler` forwards the SSH side's events here.
public final class SSHChannelBridge {
    public let sshChannel: SSHSessionChannel
    private var output: Channel?
    /// The peer's bytes that arrived before the output channel existed (bounded by our window).
    private var early: [ByteBuffer] = []
    private var earlyEOF = false
    private let closeOutputOnEOF: Bool
    private var feeders: [Feeder] = []
    private var endedInputs = 0
    /// Called once every input has ended (EOF, EIO from a PTY, an error, or close).
    public var onInputsEnded: () -> Void = {}
    /// Sees every chunk read from the inputs before it goes to the peer (a session recorder).
    public var onInput: ((ByteBuffer, _ stderr: Bool) -> Void)?
    /// While held, the inputs are not read (a consumer besides the peer, such as a recorder,
    /// is behind); the peer's window alone does not resume them.
    public private(set) var inputsHeld = false

    /// `closeOutputOnEOF`: the peer's EOF half-closes the output (pipes, sockets); a PTY master
    /// must stay open, so for it pass false.
    public init(sshChannel: SSHSessionChannel, closeOutputOnEOF: Bool = true) {
        self.sshChannel = sshChannel
        self.closeOutputOnEOF = closeOutputOnEOF
    }

    /// A handler for a NIO channel whose inbound bytes go to the SSH channel.
    /// `gather`: small reads during a burst are sent together (a PTY's); the first read after
    /// a pause is sent at once (an echo is never delayed).
    public func makeInput(stderr: Bool = false, gather: Bool = false) -> any ChannelInboundHandler & RemovableChannelHandler {
        let feeder = Feeder(bridge: self, stderr: stderr, gather: gather)
        feeders.append(feeder)
        return feeder
    }

    /// The channel the peer's bytes are written to.
    public func setOutput(_ channel: Channel) {
        output = channel
        for data in early { write(data) }
        early = []
        if earlyEOF { receiveEOF() }
    }

    public func receive(_ data: ByteBuffer) {
        guard output != nil else { return early.append(data) }
        write(data)
    }

    private func write(_ data: ByteBuffer) {
        let count = data.readableBytes
        let channel = sshChannel
        output?.writeAndFlush(data).assumeIsolated().whenComplete { result in
            if case .success = result { channel.consumed(count) }
        }
    }

    public func receiveEOF() {
        guard let output else { return earlyEOF = true }
        if closeOutputOnEOF { output.close(mode: .output, promise: nil) }
    }

    public func writabilityChanged() {
        if sshChannel.isWritable && !inputsHeld { feeders.forEach { $0.resume() } }
    }

    /// Stops (true) or resumes (false) reading the inputs, independently of the peer's window.
    public func holdInputs(_ held: Bool) {
        guard held != inputsHeld else { return }
        inputsHeld = held
        if !held { writabilityChanged() }
    }

    /// Sends what the inputs gathered now (before a resize or a marker is recorded after it).
    public func flushGathered() {
        feeders.forEach { $0.flush() }
    }

    /// Closes every NIO channel (the SSH channel is gone, or the session ends).
    public func close() {
        output?.close(promise: nil)
        feeders.forEach { $0.context?.close(promise: nil) }
    }

    fileprivate func inputEnded() {
        endedInputs += 1
        if endedInputs == feeders.count { onInputsEnded() }
    }

    private final class Feeder: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        private weak var bridge: SSHChannelBridge?
        private let stderr: Bool
        fileprivate var context: ChannelHandlerContext?
        private var paused = false
        private var ended = false
        /// Reads of the last moment, sent as one message: a PTY hands out its output 4 KiB a
        /// read, and a packet (encrypted, written) per read cost more than the bytes. A small
        /// read waits at most `gatherDelay` for more (an echo's latency is not felt).
        private var gathered: ByteBuffer?
        private var gatherFlush: Scheduled<Void>?
        private let gather: Bool
        private var lastSent = NIODeadline.distantPast
        static let gatherLimit = 64 * 1024
        static let gatherEnough = 16 * 1024
        static let gatherDelay: TimeAmount = .microseconds(500)

        init(bridge: SSHChannelBridge, stderr: Bool, gather: Bool) {
            self.bridge = bridge
            self.stderr = stderr
            self.gather = gather
        }

        func flush() {
            guard let context else { return }
            send(context: context)
        }

        func handlerAdded(context: ChannelHandlerContext) { self.context = context }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            if gathered == nil {
                gathered = bytes
            } else {
                gathered!.writeBuffer(&bytes)
            }
            if gathered!.readableBytes >= Self.gatherLimit { send(context: context) }
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            // Not gathering, enough gathered, or the first read after a pause: sent now.
            if !gather || (gathered?.readableBytes ?? 0) >= Self.gatherEnough || NIODeadline.now() - lastSent > Self.gatherDelay * 4 {
                send(context: context)
            } else if gathered != nil, gatherFlush == nil {
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                gatherFlush = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: Self.gatherDelay) { [weak self] in
                    self?.gatherFlush = nil
                    self?.send(context: loopBound.value)
                }
            }
            context.fireChannelReadComplete()
        }

        /// What was gathered, to the recorder and the peer.
        private func send(context: ChannelHandlerContext) {
            gatherFlush?.cancel()
            gatherFlush = nil
            guard let bytes = gathered, let bridge else { return }
            gathered = nil
            lastSent = .now()
            let channel = bridge.sshChannel
            bridge.onInput?(bytes, stderr)
            channel.write(bytes, stderr: stderr)
            if (!channel.isWritable || bridge.inputsHeld) && !paused {
                paused = true
                try? context.channel.syncOptions?.setOption(.autoRead, value: false)
            }
        }

        func resume() {
            guard paused, let context else { return }
            paused = false
            try? context.channel.syncOptions?.setOption(.autoRead, value: true)
            context.read()
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case ChannelEvent.inputClosed = event {
                send(context: context)
                end()
            }
            context.fireUserInboundEventTriggered(event)
        }

        /// A PTY master reports the child's exit as EIO: that is the end of its output.
        func errorCaught(context: ChannelHandlerContext, error: Error) {
            send(context: context)
            end()
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            send(context: context)
            end()
            self.context = nil
            context.fireChannelInactive()
        }

        private func end() {
            guard !ended else { return }
            ended = true
            bridge?.inputEnded()
        }
    }
}
