import FIPSCrypto
import Logging
import NIOCore
import NIOPosix
import SSH
import SSHHost

/// Starts the example SSH server: our engine with exec, shell, PTY and sftp sessions and
/// `direct-tcpip` forwarding. Used by the interop tests and by bench/ssh-engine.sh; the node
/// service starts from the same pieces.
public enum ExampleServer {
    public static func start(host: String = "127.0.0.1", port: Int = 0, crypto: CryptoContext, hostKeys: [PrivateKey],
                             hostCertificates: [SSHCertificate] = [], authenticator: SSHServerAuthenticator, banner: String? = nil,
                             rekeyAfterBytes: Int = 1 << 30, rekeyInterval: TimeAmount? = .hours(1),
                             keepaliveInterval: TimeAmount? = .minutes(5), keepaliveMaximumMissed: Int = 3,
                             channelAdmission: (@Sendable (SSHSessionContext, SSHChannelOpening) -> String?)? = nil,
                             logger: Logger = Logger(label: "portcullis.ssh")) async throws -> Channel {
        let configuration = SSHServerConfiguration(
            crypto: crypto, hostKeys: hostKeys, hostCertificates: hostCertificates, authenticator: authenticator, banner: banner,
            rekeyAfterBytes: rekeyAfterBytes, rekeyInterval: rekeyInterval,
            keepaliveInterval: keepaliveInterval, keepaliveMaximumMissed: keepaliveMaximumMissed,
            channelAdmission: channelAdmission,
            sessionHandlerFactory: { context, _ in ExampleSession(eventLoop: context.eventLoop) },
            directTCPIPHandler: { TCPForwarder.open($0, $1, $2) },
            logger: logger)
        return try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(SSHServerHandler(configuration: configuration)) }
            }
            .bind(host: host, port: port).get()
    }
}
