import FIPSCrypto
import Logging
import NIOCore
import NIOPosix

/// Runs bytes from an untrusted peer through every parser a peer can reach: packet framing, the
/// transport state machine, KEXINIT, keys and certificates, user authentication and the
/// connection layer. For the fuzzer (`make fuzz`) and the hostile-input tests: whatever the
/// bytes, this must return (errors are expected) without trapping, hanging or growing without bound.
public enum UntrustedInput {
    struct RejectAll: SSHServerAuthenticator {
        func decide(_ offer: PublicKeyOffer) -> AuthenticationDecision { .reject("fuzz") }
    }

    final class NullSession: SSHSessionHandler {
        func handle(_ request: SessionRequest, on channel: SSHSessionChannel) -> Bool { true }
        func receive(_ data: ByteBuffer, on channel: SSHSessionChannel) { channel.consumed(data.readableBytes) }
        func receiveEOF(on channel: SSHSessionChannel) {}
        func writabilityChanged(on channel: SSHSessionChannel) {}
        func closed(_ channel: SSHSessionChannel) {}
    }

    public static func exercise(_ bytes: [UInt8], using crypto: CryptoContext, hostKey: PrivateKey) {
        let payload = ByteBuffer(bytes: bytes)

        var framed = payload
        let plain = PacketProtection(plaintextUsing: crypto)
        while (try? plain.open(from: &framed)) != nil, framed.readableBytes > 0 {}

        var kexInit = payload
        _ = try? KexInit(parsing: &kexInit)
        _ = try? PublicKey(sshWire: bytes, using: crypto)
        if let certificate = try? SSHCertificate(wire: bytes, using: crypto) {
            _ = try? certificate.validate(kind: .user, principal: "root", trustedAuthorities: [certificate.signatureKey])
        }

        // User authentication, after the service request, with a fixed session id.
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let control = SSHConnectionControl(eventLoop: loop, remoteAddress: nil, localAddress: nil) { _ in }
        let userAuth = UserAuthenticationServer(crypto: crypto, authenticator: RejectAll(), connection: control) { [UInt8](repeating: 1, count: 32) }
        try? userAuth.receive(.message(.serviceRequest) { $0.writeSSHString("ssh-userauth") })
        for message in split(payload) { if (try? userAuth.receive(message)) == nil { break } }

        // The connection layer as server (every channel accepted) and as client (one session
        // channel opened, so replies and server requests reach a channel).
        let context = SSHSessionContext(username: "fuzz", certificate: nil, remoteAddress: nil, eventLoop: loop)
        let server = SSHConnectionLayer(role: .server(acceptChannel: { _, opening in opening.accept(NullSession()) }),
                                        context: context, send: { _ in }, fail: { _ in })
        let client = SSHConnectionLayer(role: .client, context: context, send: { _ in }, fail: { _ in })
        client.openChannel(.session, handler: NullSession()) { _ in }
        for connection in [server, client] {
            for message in split(payload) { if (try? connection.receive(message)) == nil { break } }
            connection.connectionClosed()
        }

        // The transport from the first byte, both roles: version line, then packets.
        guard let serverKey = try? SSHHostKey(privateKey: hostKey, certificate: nil) else { return }
        let roles: [SSHTransport.Role] = [.server(hostKeys: [serverKey]), .client(verifier: TrustAny())]
        for role in roles {
            let transport = SSHTransport(configuration: .init(role: role, crypto: crypto, algorithms: .default,
                                                              rekeyAfterBytes: 1 << 30, logger: Logger(label: "fuzz")))
            transport.deliver = { _ in }
            try? transport.start()
            var stream = ByteBuffer(bytes: Array("SSH-2.0-Fuzz\r\n".utf8) + bytes)
            try? transport.receive(&stream)
        }
    }

    struct TrustAny: SSHHostKeyVerifier {
        func decide(_ hostKey: PresentedHostKey) -> AuthenticationDecision { .accept }
    }

    /// Cuts bytes into messages: a length byte, then that many bytes.
    private static func split(_ buffer: ByteBuffer) -> [ByteBuffer] {
        var buffer = buffer
        var messages: [ByteBuffer] = []
        while let length = buffer.readInteger(as: UInt8.self), let message = buffer.readSlice(length: min(Int(length), buffer.readableBytes)) {
            if message.readableBytes > 0 { messages.append(message) }
        }
        return messages
    }
}
