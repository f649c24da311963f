import NIOCore
import NIOPosix
import SSH

/// `direct-tcpip` (`ssh -W`, `-J`, `-L`): connects to the target first, and only then confirms
/// the channel, so a client learns of an unreachable target as an open failure with the reason.
/// (The node decides per role whether forwarding is permitted; the example permits all.)
public enum ExampleForwarder {
    public static func open(_ context: SSHSessionContext, _ request: DirectTCPIPRequest, _ opening: SSHChannelOpening) {
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
                    pending.value.reject("connect to \(request.host):\(request.port) failed: \(error)")
                case .success(let socket):
                    let session = ForwardedConnection(socket: socket)
                    guard let channel = pending.value.accept(session) else { return socket.close(promise: nil) }
                    session.attach(to: channel)
                }
            }
    }
}

/// One forwarded TCP connection: an SSH channel bridged to a socket.
final class ForwardedConnection: SSHSessionHandler {
    private let socket: Channel
    private var bridge: SSHChannelBridge?

    init(socket: Channel) { self.socket = socket }

    func attach(to channel: SSHSessionChannel) {
        let bridge = SSHChannelBridge(sshChannel: channel)
        self.bridge = bridge
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
    func receive(_ data: ByteBuffer, on channel: SSHSessionChannel) { bridge?.receive(data) }
    func receiveEOF(on channel: SSHSessionChannel) { bridge?.receiveEOF() }
    func writabilityChanged(on channel: SSHSessionChannel) { bridge?.writabilityChanged() }
    func closed(_ channel: SSHSessionChannel) { bridge?.close() }
}
