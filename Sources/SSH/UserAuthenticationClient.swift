import FIPSCrypto
import NIOCore

/// The client side of RFC 4252: asks for the userauth service and signs one publickey request,
/// with a certificate when one is configured (no query first: the server answers the signed
/// request directly, which saves a round trip).
final class UserAuthenticationClient {
    private let crypto: CryptoContext
    private let username: String
    private let privateKey: PrivateKey
    private let certificate: SSHCertificate?
    private let sessionID: () -> [UInt8]?
    private var requested = false
    private(set) var authenticated = false
    var send: (ByteBuffer) throws -> Void = { _ in }
    /// A banner the server sent (RFC 4252 §5.4), e.g. a legal notice.
    var onBanner: (String) -> Void = { _ in }

    init(crypto: CryptoContext, username: String, privateKey: PrivateKey, certificate: SSHCertificate?, sessionID: @escaping () -> [UInt8]?) {
        self.crypto = crypto
        self.username = username
        self.privateKey = privateKey
        self.certificate = certificate
        self.sessionID = sessionID
    }

    func start() throws {
        try send(.message(.serviceRequest) { $0.writeSSHString("ssh-userauth") })
    }

    func receive(_ payload: ByteBuffer) throws {
        var message = payload
        switch message.readInteger(as: UInt8.self).flatMap(MessageNumber.init(rawValue:)) {
        case .serviceAccept:
            guard !requested else { throw SSHError.protocolError("a second SERVICE_ACCEPT") }
            requested = true
            try sendSignedRequest()
        case .userAuthBanner:
            if let text = message.readSSHText(limit: 64 * 1024) { onBanner(text) }
        case .userAuthFailure:
            let methods = message.readNameList() ?? []
            let what = certificate.map { "certificate '\($0.keyID)'" } ?? "key"
            throw SSHError(.noMoreAuthMethodsAvailable,
                           "the server refused the \(what) for user '\(username)' (it accepts: \(methods.isEmpty ? "nothing" : methods.joined(separator: ",")))")
        case .userAuthSuccess:
            guard requested else { throw SSHError.protocolError("USERAUTH_SUCCESS before any request") }
            authenticated = true
        default:
            throw SSHError.protocolError("message \(payload.getInteger(at: payload.readerIndex, as: UInt8.self) ?? 0) during user authentication")
        }
    }

    private func sendSignedRequest() throws {
        guard let sessionID = sessionID() else { throw SSHError.protocolError("user authentication before key exchange") }
        let algorithm = certificate.map { SSHCertificate.algorithmName(for: $0.key.algorithm) } ?? privateKey.algorithm.sshName
        let blob = try certificate?.wire ?? privateKey.publicKey.sshWire
        var request = ByteBuffer.message(.userAuthRequest) {
            $0.writeSSHString(username)
            $0.writeSSHString("ssh-connection")
            $0.writeSSHString("publickey")
            $0.writeSSHBool(true)
            $0.writeSSHString(algorithm)
            $0.writeSSHString(blob)
        }
        var signed = ByteBufferAllocator().buffer(capacity: request.readableBytes + 40)
        signed.writeSSHString(sessionID)
        signed.writeImmutableBuffer(request)
        request.writeSSHString(try privateKey.sshSignature(for: signed.readableBytesView))
        try send(request)
    }
}
