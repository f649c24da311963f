import NIOCore
import NIOPosix
import SSH

/// `direct-tcpip` (`ssh -W`, `-J`, `-L`): connects to the target first, and only then confirms
/// the channel, so a client learns of an unreachable target as an open failure with the reason.
/// (Whether forwarding is permitted at all is the caller's decision.) `onResult` hears the
/// outcome (nil: connected), `onActivity` every byte moved either way.
public enum TCPForwarder {
    public static func open(_ context: SSHSessionContext, _ request: DirectTCPIPRequest, _ opening: SSHChannelOpening,
                            onActivity: (@Sendable () -> Void)? = nil, onResult: (@Sendable (String?) -> Void)? = nil) {
        let loop = context.eventLoop
        let pending = NIOLoopBound(opening, eventLoop: loop)
        ClientBootstrap(group: loop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.autoRead, value: false)
            .connectTimeout(.seconds(10))
            .connect(host: request.host, port: request.port)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .failure(let error):
                    let reason = "connect to \(request.host):\(request.port) failed: \(error)"
                    pending.value.reject(reason)
                    onResult?(reason)
                case .success(let socket):
                    let session = ForwardedConnection(socket: socket, onActivity: onActivity)
                    guard let channel = pending.value.accept(session) else { return socket.close(promise: nil) }
                    session.attach(to: channel)
                    onResult?(nil)
                }
            }
    }
}

/// One forwarded TCP connection: an SSH channel bridged to a socket.
final class ForwardedConnection: SSHSessionHandler {
    private let socket: Channel
    private var bridge: SSHChannelBridge?
    private let onActivity: (@Sendable () -> Void)?

    init(socket: Channel, onActivity: (@Sendable () -> Void)?) {
        self.socket = socket
        self.onActivity = onActivity
    }

    func attach(to channel: SSHSessionChannel) {
        let bridge = SSHChannelBridge(sshChannel: channel)
        self.bridge = bridge
        if let onActivity { bridge.onInput = { _, _ in onActivity() } }
        bridge.onInputsEnded = { [weak channel] in
            channel?.sendEOF()
            channel?.close()
        }
        do {
            try socket.pipeline.syncOperations.addHandler(bridge.makeInput())
            try socket.syncOptions?.setOption(.autoRead, value: true)
            socket.read()
        } catch {
            channel.close()
        }
        bridge.setOutput(socket)
    }

    func handle(_ request: SessionRequest, on channel: SSHSessionChannel) -> Bool { false }
    func receive(_ data: ByteBuffer, on channel: SSHSessionChannel) {
        onActivity?()
        bridge?.receive(data)
    }
    func receiveEOF(on channel: SSHSessionChannel) { bridge?.receiveEOF() }
    func writabilityChanged(on channel: SSHSessionChannel) { bridge?.writabilityChanged() }
    func closed(_ channel: SSHSessionChannel) { bridge?.close() }
}
