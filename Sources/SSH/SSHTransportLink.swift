import FIPSCrypto
import Logging
import NIOCore

/// Ties a transport to its NIO channel, for either role: bytes each way, the re-key timer, and
/// the one way a connection ends on error (DISCONNECT with the reason, a log line, close).
final class SSHTransportLink {
    let transport: SSHTransport
    private(set) var logger: Logger
    private let context: NIOLoopBound<ChannelHandlerContext>
    private let rekeyInterval: TimeAmount?
    private var rekeyTimer: RepeatedTask?
    private let peerName: String
    private(set) var failure: SSHError?
    private var flushScheduled = false

    init(context: ChannelHandlerContext, role: SSHTransport.Role, crypto: CryptoContext, algorithms: SSHAlgorithms,
         rekeyAfterBytes: Int, rekeyInterval: TimeAmount?, logger: Logger, peerName: String) {
        var logger = logger
        logger[metadataKey: "remote"] = "\(context.remoteAddress.map { "\($0)" } ?? "?")"
        self.logger = logger
        self.peerName = peerName
        self.rekeyInterval = rekeyInterval
        self.context = NIOLoopBound(context, eventLoop: context.eventLoop)
        transport = SSHTransport(configuration: .init(role: role, crypto: crypto, algorithms: algorithms,
                                                      rekeyAfterBytes: rekeyAfterBytes, logger: logger))
        transport.write = { [weak self] bytes in self?.write(bytes) }
        // What may wait for the socket before channels stop taking output (OpenSSH: ~128 KiB).
        do {
            try context.channel.syncOptions?.setOption(.writeBufferWaterMark, value: Self.writeBufferWaterMark)
        } catch {
            logger.warning("cannot set the socket's write-buffer watermarks", metadata: ["error": "\(error)"])
        }
    }

    static let writeBufferWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 128 << 10, high: 256 << 10)

    /// Packets written in one event-loop tick leave in one flush (one syscall for a burst of
    /// channel data instead of one per packet).
    private func write(_ bytes: ByteBuffer) {
        let context = context.value
        context.write(NIOAny(bytes), promise: nil)
        guard !flushScheduled else { return }
        flushScheduled = true
        let link = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            link.value.flushScheduled = false
            link.value.context.value.flush()
        }
    }

    func start() {
        if let interval = rekeyInterval {
            let link = NIOLoopBound(self, eventLoop: context.value.eventLoop)
            rekeyTimer = context.value.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                do { try link.value.transport.rekey() } catch { link.value.fail(error) }
            }
        }
        do { try transport.start() } catch { fail(error) }
    }

    func stop() {
        rekeyTimer?.cancel()
        rekeyTimer = nil
    }

    func receive(_ bytes: ByteBuffer) {
        guard failure == nil else { return }
        var bytes = bytes
        do { try transport.receive(&bytes) } catch { fail(error) }
    }

    func fail(_ error: Error) {
        guard failure == nil else { return }
        let sshError = error as? SSHError ?? SSHError(.protocolError, "\(error)")
        failure = sshError
        if sshError.reason == .connectionLost {
            logger.info("\(peerName) disconnected", metadata: sshError.message.isEmpty ? [:] : ["detail": "\(sshError.message)"])
        } else {
            logger.warning("disconnecting: \(sshError.message)", metadata: ["reason": "\(sshError.reason)"])
        }
        let context = context.value
        if let packet = transport.disconnectPacket(sshError) {
            let channel = context.channel
            context.writeAndFlush(NIOAny(packet)).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }
}
