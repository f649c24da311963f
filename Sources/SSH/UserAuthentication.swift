import FIPSCrypto
import NIOCore

/// A public key offered by a client, with the user it asks to log in as.
public struct PublicKeyOffer: Sendable {
    public var username: String
    public var key: PublicKey
}

/// Decides who may log in. Called on the connection's event loop; keep it quick.
public protocol SSHServerAuthenticator: Sendable {
    /// Whether `offer` would be accepted if the client proves it holds the private key. Called
    /// for queries and again, after the signature is verified, for the real request.
    func accepts(_ offer: PublicKeyOffer) -> Bool
}

/// The server side of RFC 4252 on top of a transport. Messages after success go to `connection`.
final class UserAuthenticationServer {
    static let maximumAttempts = 6

    private let crypto: CryptoContext
    private let authenticator: SSHServerAuthenticator
    private let sessionID: () -> [UInt8]?
    private var serviceAccepted = false
    private var attempts = 0
    private(set) var authenticatedUser: String?

    var send: (ByteBuffer) throws -> Void = { _ in }

    init(crypto: CryptoContext, authenticator: SSHServerAuthenticator, sessionID: @escaping () -> [UInt8]?) {
        self.crypto = crypto
        self.authenticator = authenticator
        self.sessionID = sessionID
    }

    /// Handles a message before authentication completed. Returns true once the user is in.
    func receive(_ payload: ByteBuffer) throws {
        var message = payload
        let number = message.readInteger(as: UInt8.self)
        if !serviceAccepted {
            guard number == MessageNumber.serviceRequest.rawValue, let service = message.readSSHText(limit: 64) else {
                throw SSHError.protocolError("expected SERVICE_REQUEST, got message \(number ?? 0)")
            }
            guard service == "ssh-userauth" else { throw SSHError(.serviceNotAvailable, "service '\(service)' is not available") }
            serviceAccepted = true
            try send(.message(.serviceAccept) { $0.writeSSHString("ssh-userauth") })
            return
        }
        guard number == MessageNumber.userAuthRequest.rawValue else {
            throw SSHError.protocolError("message \(number ?? 0) before authentication")
        }
        guard let user = message.readSSHText(limit: 256), let service = message.readSSHText(limit: 64),
              let method = message.readSSHText(limit: 64)
        else { throw SSHError.malformed("USERAUTH_REQUEST") }
        guard service == "ssh-connection" else { throw SSHError(.serviceNotAvailable, "service '\(service)' is not available") }
        switch method {
        case "none":
            try fail()
        case "publickey":
            try publicKey(user: user, message: &message)
        default:
            attempts += 1
            try fail()
        }
    }

    private func publicKey(user: String, message: inout ByteBuffer) throws {
        guard let signed = message.readSSHBool(), let algorithm = message.readSSHText(limit: 128),
              let blob = message.readSSHBytes()
        else { throw SSHError.malformed("publickey request") }
        guard let parsed = try? PublicKey(sshWire: blob, using: crypto), parsed.algorithm.rawValue == algorithm else {
            attempts += 1
            return try fail()
        }
        let offer = PublicKeyOffer(username: user, key: parsed)
        guard signed else {
            guard authenticator.accepts(offer) else { return try fail() }
            return try send(.message(.userAuthPKOK) {
                $0.writeSSHString(algorithm)
                $0.writeSSHString(blob)
            })
        }
        attempts += 1
        guard let signature = message.readSSHBytes(), message.readableBytes == 0, let sessionID = sessionID() else {
            throw SSHError.malformed("publickey request")
        }
        var signedData = ByteBufferAllocator().buffer(capacity: 256)
        signedData.writeSSHString(sessionID)
        signedData.writeInteger(MessageNumber.userAuthRequest.rawValue)
        signedData.writeSSHString(user)
        signedData.writeSSHString("ssh-connection")
        signedData.writeSSHString("publickey")
        signedData.writeSSHBool(true)
        signedData.writeSSHString(algorithm)
        signedData.writeSSHString(blob)
        guard parsed.isValidSSHSignature(signature, for: signedData.readableBytesView), authenticator.accepts(offer) else {
            return try fail()
        }
        authenticatedUser = user
        try send(.message(.userAuthSuccess))
    }

    private func fail() throws {
        if attempts >= Self.maximumAttempts {
            throw SSHError(.noMoreAuthMethodsAvailable, "too many authentication failures")
        }
        try send(.message(.userAuthFailure) {
            $0.writeNameList(["publickey"])
            $0.writeSSHBool(false)
        })
    }
}
