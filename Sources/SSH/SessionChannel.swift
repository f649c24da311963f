import NIOCore

/// What the application does with a session channel. Every call comes on the connection's
/// event loop.
public protocol SSHSessionHandler: AnyObject {
    /// Returns whether the request was accepted (the peer is told when it asked).
    func handle(_ request: SessionRequest, on channel: SSHSessionChannel) -> Bool
    /// Data from the peer (a client's stdin, a server's stdout). Call `channel.consumed(_:)` once
    /// it has been passed on: only then does the peer get window to send more.
    func receive(_ data: ByteBuffer, on channel: SSHSessionChannel)
    /// Extended data (a server's stderr). By default it is consumed and dropped.
    func receiveExtendedData(_ data: ByteBuffer, on channel: SSHSessionChannel)
    func receiveEOF(on channel: SSHSessionChannel)
    /// The peer can take more data again after `isWritable` was false.
    func writabilityChanged(on channel: SSHSessionChannel)
    /// The channel is gone (closed by either side, or the connection ended).
    func closed(_ channel: SSHSessionChannel)
}

extension SSHSessionHandler {
    public func receiveExtendedData(_ data: ByteBuffer, on channel: SSHSessionChannel) { channel.consumed(data.readableBytes) }
}

/// Who a session belongs to, for the handler factory.
public struct SSHSessionContext: Sendable {
    public var username: String
    public var certificate: SSHCertificate?
    public var remoteAddress: SocketAddress?
    /// The connection's event loop: the only place its channels may be used.
    public var eventLoop: EventLoop
    /// The connection itself (server side): its state, and a way to end it.
    public var connection: SSHConnectionControl?
}

/// Whether the connection's socket takes more bytes (NIO's write-buffer watermarks), shared by
/// its channels.
final class TransportWritability {
    var isWritable = true
}

/// One channel of a connection (a session, or a `direct-tcpip` byte stream), on either side.
/// Writes beyond the peer's window wait here (the peer grants more with WINDOW_ADJUST);
/// `isWritable` turns false while more than `highWatermark` bytes wait, or while the socket
/// itself is full, which is the application's cue to stop reading its source. The window alone
/// is no bound: a peer may grant 4 GiB and stop reading.
public final class SSHSessionChannel {
    public static let highWatermark = 1 << 20

    public let localID: UInt32
    let remoteID: UInt32
    var remoteWindow: UInt64
    let remoteMaxPacket: Int
    var localWindow: UInt32
    var unacknowledged: UInt32 = 0
    var handler: SSHSessionHandler?
    /// Everything outbound, in order: data waits for window, and EOF, requests and close wait
    /// behind the data before them, so the end of the output is never overtaken.
    private enum Outbound {
        case data(ByteBuffer, stderr: Bool)
        case message(ByteBuffer)
    }
    private var queue: [Outbound] = []
    private(set) var pendingBytes = 0
    private(set) var sentEOF = false
    private(set) var sentClose = false
    private var closing = false
    var receivedEOF = false
    private var replyHandlers: [(Bool) -> Void] = []
    private let send: (ByteBuffer) throws -> Void
    private let fail: (Error) -> Void
    private let transport: TransportWritability
    /// Bytes read from / written to this channel, for idle tracking.
    public private(set) var bytesReceived = 0
    public private(set) var bytesSent = 0

    init(localID: UInt32, remoteID: UInt32, remoteWindow: UInt32, remoteMaxPacket: UInt32, localWindow: UInt32,
         transport: TransportWritability, send: @escaping (ByteBuffer) throws -> Void, fail: @escaping (Error) -> Void) {
        self.transport = transport
        self.localID = localID
        self.remoteID = remoteID
        self.remoteWindow = UInt64(remoteWindow)
        self.remoteMaxPacket = Int(min(remoteMaxPacket, 32768))
        self.localWindow = localWindow
        self.send = send
        self.fail = fail
    }

    public var isWritable: Bool { pendingBytes < Self.highWatermark && transport.isWritable }

    /// Sends stdout (or stderr) data, as the window allows.
    public func write(_ data: ByteBuffer, stderr: Bool = false) {
        guard !sentEOF && !closing, data.readableBytes > 0 else { return }
        queue.append(.data(data, stderr: stderr))
        pendingBytes += data.readableBytes
        flush()
    }

    /// Tells the client no more data follows (after what is queued).
    public func sendEOF() {
        guard !sentEOF && !closing else { return }
        sentEOF = true
        enqueue(.message(.channelEOF) { $0.writeInteger(remoteID) })
    }

    public func sendExitStatus(_ status: UInt32) {
        sendRequest(.exitStatus(status))
    }

    /// `signal` without the "SIG" prefix, e.g. "TERM".
    public func sendExitSignal(_ signal: String, coreDumped: Bool = false, message: String = "") {
        sendRequest(.exitSignal(name: signal, coreDumped: coreDumped, message: message))
    }

    /// Sends a request after the data queued before it. With `onReply`, the peer is asked to
    /// answer and the answer (accepted or not) is passed on; a channel that closes first answers false.
    public func sendRequest(_ request: SessionRequest, onReply: ((Bool) -> Void)? = nil) {
        guard !closing else {
            onReply?(false)
            return
        }
        if let onReply { replyHandlers.append(onReply) }
        enqueue(.message(.channelRequest) {
            $0.writeInteger(remoteID)
            $0.writeSSHString(request.type)
            $0.writeSSHBool(onReply != nil)
            request.write(to: &$0)
        })
    }

    /// The peer answered our oldest request that asked for a reply.
    func receivedReply(_ accepted: Bool) throws {
        guard !replyHandlers.isEmpty else { throw SSHError.protocolError("a channel reply that answers no request") }
        replyHandlers.removeFirst()(accepted)
    }

    /// The channel is gone: requests still waiting for an answer are refused.
    func failPendingReplies() {
        let handlers = replyHandlers
        replyHandlers = []
        for handler in handlers { handler(false) }
    }

    /// Closes the channel after everything queued before it.
    public func close() {
        guard !closing else { return }
        closing = true
        enqueue(.message(.channelClose) { $0.writeInteger(remoteID) })
    }

    /// The client closed the channel: answer at once, dropping what could not be sent.
    func closeNow() {
        queue = []
        pendingBytes = 0
        closing = true
        guard !sentClose else { return }
        sentClose = true
        transmit(.message(.channelClose) { $0.writeInteger(remoteID) })
    }

    /// The application passed `count` bytes of received data on: the client may send that much more.
    public func consumed(_ count: Int) {
        unacknowledged += UInt32(count)
        // Grant in large steps (half the initial window) to keep WINDOW_ADJUST traffic low.
        if unacknowledged >= SSHConnectionLayer.initialWindow / 2 && !closing && !receivedEOF {
            let grant = unacknowledged
            unacknowledged = 0
            localWindow += grant
            transmit(.message(.channelWindowAdjust) {
                $0.writeInteger(remoteID)
                $0.writeInteger(grant)
            })
        }
    }

    func received(_ count: Int) { bytesReceived += count }

    func windowAdjusted(_ bytes: UInt32) throws {
        remoteWindow += UInt64(bytes)
        guard remoteWindow <= UInt64(UInt32.max) else { throw SSHError.protocolError("window adjust overflows the channel window") }
        let wasWritable = isWritable
        flush()
        if !wasWritable && isWritable { handler?.writabilityChanged(on: self) }
    }

    private func enqueue(_ message: ByteBuffer) {
        queue.append(.message(message))
        flush()
    }

    private func flush() {
        while let first = queue.first {
            switch first {
            case .message(let message):
                queue.removeFirst()
                if message.getInteger(at: message.readerIndex, as: UInt8.self) == MessageNumber.channelClose.rawValue {
                    sentClose = true
                }
                transmit(message)
            case .data(var data, let stderr):
                guard remoteWindow > 0 else { return }
                let size = min(data.readableBytes, remoteMaxPacket, Int(remoteWindow))
                let chunk = data.readSlice(length: size)!
                remoteWindow -= UInt64(size)
                pendingBytes -= size
                bytesSent += size
                if data.readableBytes == 0 { queue.removeFirst() } else { queue[0] = .data(data, stderr: stderr) }
                transmit(.message(stderr ? .channelExtendedData : .channelData) {
                    $0.writeInteger(remoteID)
                    if stderr { $0.writeInteger(UInt32(1)) }
                    $0.writeSSHString(chunk)
                })
            }
        }
    }

    private func transmit(_ message: ByteBuffer) {
        do { try send(message) } catch { fail(error) }
    }
}
